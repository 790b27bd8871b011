#!/usr/bin/env bash
# Extract the PPP frames (L2TP data payloads) and the L2TP control messages from a decrypted
# interop capture into hex test vectors.
#
# usage: extract.sh SAMPLE_DIR [REPO_ROOT]
#   SAMPLE_DIR  e.g. /work/shared/interop/samples/strongswan-server-windows10
#               (needs client.pcap, wireshark/esp_sa, wireshark/ikev1_decryption_table,
#                ipsec.conf; pppd.log and result.env are used for the header if present)
#   REPO_ROOT   defaults to the l2sec checkout this script lives in (../.. from here)
# writes
#   REPO_ROOT/ppp/testdata/<name>-ppp.hex       every PPP frame carried in L2TP data messages
#   REPO_ROOT/l2tp/testdata/<name>-control.hex  every L2TP control message (incl. ZLB acks)
# needs: tshark (Wireshark >= 3.x; made with 4.0.17), python3
set -euo pipefail

sample=$(cd "${1:?usage: extract.sh SAMPLE_DIR [REPO_ROOT]}" && pwd)
repo=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
name=$(basename "$sample")
pcap=$sample/client.pcap

args=(-o esp.enable_encryption_decode:TRUE)
while read -r r; do [[ -n $r ]] && args+=(-o "uat:esp_sa:$r"); done < "$sample/wireshark/esp_sa"
while read -r r; do [[ -n $r ]] && args+=(-o "uat:ikev1_decryption_table:$r"); done < "$sample/wireshark/ikev1_decryption_table"

# Client (LAC / PPP peer) address: ipsec.conf left=, else the source of the first ISAKMP packet.
client_ip=$(sed -n 's/^[[:space:]]*left=\([0-9.]*\)[[:space:]]*$/\1/p' "$sample/ipsec.conf" 2>/dev/null | head -1)
if [[ -z $client_ip ]]; then
    client_ip=$(tshark -r "$pcap" -Y isakmp -T fields -e ip.src -c 1 2>/dev/null | head -1)
fi
server_ip=$(sed -n 's/^[[:space:]]*right=\([0-9.]*\)[[:space:]]*$/\1/p' "$sample/ipsec.conf" 2>/dev/null | head -1)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One line per decrypted L2TP datagram: frame, ip.src (all occurrences; the first is the outer
# header), udp.port, udp.payload (all occurrences; the last is the inner UDP/1701 payload, the
# whole L2TP message), then tshark's protocol + info columns.
tshark -r "$pcap" "${args[@]}" -Y l2tp -T fields -E occurrence=a -E aggregator=, \
    -e frame.number -e ip.src -e udp.port -e udp.payload -e _ws.col.Protocol -e _ws.col.Info \
    >"$tmp/l2tp.tsv" 2>"$tmp/tshark.err"
# ESP packets tshark could not decrypt to L2TP would silently be missing: count them.
tshark -r "$pcap" "${args[@]}" -Y 'esp && !l2tp' -T fields -e frame.number \
    >"$tmp/undecrypted" 2>/dev/null || true

mkdir -p "$repo/ppp/testdata" "$repo/l2tp/testdata"
SAMPLE=$sample NAME=$name PCAP=$pcap CLIENT_IP=$client_ip SERVER_IP=$server_ip \
PPP_OUT=$repo/ppp/testdata/$name-ppp.hex CTL_OUT=$repo/l2tp/testdata/$name-control.hex \
python3 - "$tmp/l2tp.tsv" "$tmp/undecrypted" <<'PY'
import os, sys, struct, ipaddress

env = os.environ
client_ip = env["CLIENT_IP"]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
undecrypted = [l.strip() for l in open(sys.argv[2]) if l.strip()]
if undecrypted:
    print(f"WARNING: {len(undecrypted)} ESP frames not decoded as L2TP: {' '.join(undecrypted)}", file=sys.stderr)

L2TP_MSG = {0: "ZLB", 1: "SCCRQ", 2: "SCCRP", 3: "SCCCN", 4: "StopCCN", 6: "HELLO", 7: "OCRQ",
            8: "OCRP", 9: "OCCN", 10: "ICRQ", 11: "ICRP", 12: "ICCN", 14: "CDN", 15: "WEN",
            16: "SLI"}
CP_CODE = {1: "Configure-Request", 2: "Configure-Ack", 3: "Configure-Nak", 4: "Configure-Reject",
           5: "Terminate-Request", 6: "Terminate-Ack", 7: "Code-Reject", 8: "Protocol-Reject",
           9: "Echo-Request", 10: "Echo-Reply", 11: "Discard-Request", 12: "Identification",
           13: "Time-Remaining", 14: "Reset-Request", 15: "Reset-Ack"}
PROTO = {0xC021: "LCP", 0x8021: "IPCP", 0x8057: "IPV6CP", 0x80FD: "CCP", 0xC223: "CHAP",
         0xC023: "PAP", 0x0021: "IPv4", 0x0057: "IPv6", 0x00FD: "CCP-data", 0xC025: "LQR",
         0x8281: "MPLSCP", 0x80FB: "ECP"}

def parse_l2tp(b):
    """-> dict(flags, ctrl, length, tid, sid, ns, nr, hdrlen)"""
    flags = struct.unpack(">H", b[:2])[0]
    if flags & 0x000F != 2:
        raise ValueError(f"not L2TPv2: flags {flags:#06x}")
    p = 2
    length = None
    if flags & 0x4000:
        length = struct.unpack(">H", b[p:p+2])[0]; p += 2
    tid, sid = struct.unpack(">HH", b[p:p+4]); p += 4
    ns = nr = None
    if flags & 0x0800:
        ns, nr = struct.unpack(">HH", b[p:p+4]); p += 4
    if flags & 0x0200:
        off = struct.unpack(">H", b[p:p+2])[0]; p += 2 + off
    return dict(flags=flags, ctrl=bool(flags & 0x8000), length=length, tid=tid, sid=sid,
                ns=ns, nr=nr, hdrlen=p)

def l2tp_msgtype(b, h):
    body = b[h["hdrlen"]:]
    if not body:
        return "ZLB"
    # first AVP must be Message Type (vendor 0, type 0)
    if len(body) >= 8:
        vendor, atype = struct.unpack(">HH", body[2:6])
        if vendor == 0 and atype == 0:
            mt = struct.unpack(">H", body[6:8])[0]
            return L2TP_MSG.get(mt, f"msgtype{mt}")
    return "unknown"

def opts(data):
    out, p = [], 0
    while p + 2 <= len(data):
        t, l = data[p], data[p+1]
        if l < 2 or p + l > len(data):
            out.append((None, data[p:])); break
        out.append((t, data[p+2:p+l])); p += l
    return out

def fmt_lcp_opt(t, v):
    if t == 1 and len(v) == 2: return f"MRU={struct.unpack('>H', v)[0]}"
    if t == 2 and len(v) == 4: return f"ACCM=0x{v.hex()}"
    if t == 3 and len(v) >= 2:
        ap = struct.unpack(">H", v[:2])[0]
        if ap == 0xC223:
            alg = {5: "MD5", 0x80: "MS-CHAPv1", 0x81: "MS-CHAPv2"}.get(v[2] if len(v) > 2 else -1, v[2:].hex())
            return f"auth=CHAP/{alg}"
        if ap == 0xC023: return "auth=PAP"
        if ap == 0xC227: return "auth=EAP"
        return f"auth=0x{v.hex()}"
    if t == 5 and len(v) == 4: return f"magic=0x{v.hex()}"
    if t == 7 and not v: return "PFC"
    if t == 8 and not v: return "ACFC"
    if t == 13 and len(v) == 1: return f"callback={v[0]}"
    if t == 17 and len(v) == 2: return f"MRRU={struct.unpack('>H', v)[0]}"
    if t == 18 and not v: return "SSNHF"
    if t == 19: return f"EDO=0x{v.hex()}"
    return f"opt{t}=0x{v.hex()}"

def fmt_ipcp_opt(t, v):
    names = {3: "addr", 129: "dns1", 130: "nbns1", 131: "dns2", 132: "nbns2"}
    if t in names and len(v) == 4: return f"{names[t]}={ipaddress.IPv4Address(v)}"
    if t == 2: return f"ip-compression=0x{v.hex()}"
    return f"opt{t}=0x{v.hex()}"

def fmt_ipv6cp_opt(t, v):
    if t == 1 and len(v) == 8: return f"ifid={v.hex()}"
    return f"opt{t}=0x{v.hex()}"

def fmt_ccp_opt(t, v):
    if t == 18 and len(v) == 4: return f"MPPE/MPPC=0x{v.hex()}"
    return f"opt{t}=0x{v.hex()}"

def summarize_ppp(f):
    p = 0
    acfc = f[:2] == b"\xff\x03"
    if acfc: p = 2
    if f[p] & 1:
        proto = f[p]; p += 1
    else:
        proto = struct.unpack(">H", f[p:p+2])[0]; p += 2
    pname = PROTO.get(proto, f"proto-0x{proto:04x}")
    hdr = "" if acfc else "(no FF03) "
    body = f[p:]
    if proto in (0xC021, 0x8021, 0x8057, 0x80FD) and len(body) >= 4:
        code, ident, ln = body[0], body[1], struct.unpack(">H", body[2:4])[0]
        data = body[4:ln]
        s = f"{hdr}{pname} {CP_CODE.get(code, f'code{code}')} id={ident}"
        if code in (1, 2, 3, 4):
            fo = {0xC021: fmt_lcp_opt, 0x8021: fmt_ipcp_opt, 0x8057: fmt_ipv6cp_opt,
                  0x80FD: fmt_ccp_opt}[proto]
            parts = [fo(t, v) if t is not None else f"trailing=0x{v.hex()}" for t, v in opts(data)]
            s += (" " + " ".join(parts)) if parts else " (no options)"
        elif code in (9, 10, 11) and len(data) >= 4:
            s += f" magic=0x{data[:4].hex()}" + (f" data=0x{data[4:].hex()}" if data[4:] else "")
        elif code in (5, 6):
            s += f" data={data!r}" if data else ""
        elif code == 8 and len(data) >= 2:
            s += f" rejected-proto=0x{data[:2].hex()}"
        elif data:
            s += f" data=0x{data.hex()}"
        if len(body) != ln:
            s += f" (len field {ln}, {len(body)} bytes after protocol)"
        return s
    if proto == 0xC223 and len(body) >= 4:
        code, ident, ln = body[0], body[1], struct.unpack(">H", body[2:4])[0]
        data = body[4:ln]
        cname = {1: "Challenge", 2: "Response", 3: "Success", 4: "Failure"}.get(code, f"code{code}")
        s = f"{hdr}CHAP {cname} id={ident}"
        if code in (1, 2) and data:
            vs = data[0]
            val, nm = data[1:1+vs], data[1+vs:]
            s += f" value-size={vs} value={val.hex()} name={nm.decode('latin1')!r}"
            if code == 2 and vs == 49:
                s += (f" [MS-CHAPv2 peer-challenge={val[:16].hex()} reserved={val[16:24].hex()}"
                      f" nt-response={val[24:48].hex()} flags={val[48]}]")
        elif data:
            s += f" message={data.decode('latin1')!r}"
        return s
    if proto == 0xC023 and len(body) >= 4:
        code, ident = body[0], body[1]
        cname = {1: "Authenticate-Request", 2: "Authenticate-Ack", 3: "Authenticate-Nak"}.get(code, f"code{code}")
        return f"{hdr}PAP {cname} id={ident} data=0x{body[4:].hex()}"
    if proto == 0x0021 and len(body) >= 20:
        src, dst = ipaddress.IPv4Address(body[12:16]), ipaddress.IPv4Address(body[16:20])
        ipproto = body[9]
        s = f"{hdr}IPv4 {src} -> {dst} proto={ipproto} len={len(body)}"
        ihl = (body[0] & 0xF) * 4
        if ipproto == 1 and len(body) >= ihl + 8:
            t, c = body[ihl], body[ihl+1]
            iid, seq = struct.unpack(">HH", body[ihl+4:ihl+8])
            s += f" ICMP type={t} code={c}" + (f" id=0x{iid:04x} seq={seq}" if t in (0, 8) else "")
        return s
    if proto == 0x0057 and len(body) >= 40:
        src, dst = ipaddress.IPv6Address(body[8:24]), ipaddress.IPv6Address(body[24:40])
        s = f"{hdr}IPv6 {src} -> {dst} next-header={body[6]} len={len(body)}"
        if body[6] == 58 and len(body) >= 41:
            s += f" ICMPv6 type={body[40]}"
        return s
    return f"{hdr}{pname} {len(body)} bytes"

ppp_lines, ctl_lines = [], []
counts = {"ppp": 0, "ctl": 0}
seq = []
tunnels = {}
for r in rows:
    r += [""] * (6 - len(r))
    frame, ipsrc, ports, payloads, colproto, colinfo = r[:6]
    outer_src = ipsrc.split(",")[0]
    payload = bytes.fromhex(payloads.split(",")[-1])
    d = "c>" if outer_src == client_ip else "s>"
    h = parse_l2tp(payload)
    tshark_sum = f"[tshark: {colproto}: {' '.join(colinfo.split())}]"
    if h["ctrl"]:
        msg = payload if h["length"] is None else payload[:h["length"]]
        extra = "" if h["length"] is None or h["length"] == len(payload) else \
            f" (length field {h['length']} != UDP payload {len(payload)})"
        mt = l2tp_msgtype(msg, h)
        ctl_lines.append(f"# {frame} {mt} tunnel={h['tid']} session={h['sid']} Ns={h['ns']} Nr={h['nr']}"
                         f" len={len(msg)}{extra} {tshark_sum}")
        ctl_lines.append(f"{d} {msg.hex()}")
        counts["ctl"] += 1
    else:
        end = len(payload) if h["length"] is None else h["length"]
        f = payload[h["hdrlen"]:end]
        s = summarize_ppp(f)
        ppp_lines.append(f"# {frame} {s} (L2TP tunnel={h['tid']} session={h['sid']}) {tshark_sum}")
        ppp_lines.append(f"{d} {f.hex()}")
        counts["ppp"] += 1
        seq.append(f"{d[0]}:{s.split(' id=')[0].split(' value')[0]}")

def pppd_lines():
    path = os.path.join(env["SAMPLE"], "pppd.log")
    if not os.path.exists(path):
        return ["#   (no pppd.log)"]
    keep = ("ConfReq", "ConfAck", "ConfNak", "ConfRej", "CHAP", "PAP", "EAP", "authentication",
            "IP address", "LL address", "Echo", "TermReq", "TermAck")
    return [f"#   {l.rstrip()}" for l in open(path) if any(k in l for k in keep)]

def result_env():
    path = os.path.join(env["SAMPLE"], "result.env")
    if not os.path.exists(path):
        return []
    keep = ("PROFILE", "SERVER_IP", "PPP_LOCAL", "PPP_PEER", "IKE_PROPOSAL", "ESP_PROPOSAL")
    return [f"#   {l.rstrip()}" for l in open(path) if l.split("=")[0] in keep]

common = [
    f"# source: {env['PCAP']}",
    f"# client (LAC, PPP peer, strongSwan + xl2tpd + pppd): {client_ip}   server (LNS): {env['SERVER_IP'] or '?'}",
    "# extracted by ppp/testdata/extract.sh: tshark decrypts the ESP packets with the keys in",
    "#   wireshark/esp_sa + wireshark/ikev1_decryption_table (-o esp.enable_encryption_decode:TRUE,",
    "#   -o uat:esp_sa:..., -o uat:ikev1_decryption_table:...), filter -Y l2tp, fields frame.number,",
    "#   ip.src (outer), udp.payload (innermost = the whole L2TP message); the L2TP header is parsed",
    "#   by the script (flags: L 0x4000, S 0x0800, O 0x0200 + offset pad; tunnel id, session id).",
    "# direction: 'c>' = sent by the client (outer ip.src == client), 's>' = sent by the server.",
    "# comment before each line: pcap frame number, the script's own decode, [tshark: Protocol: Info].",
]
if undecrypted:
    common.append(f"# WARNING: ESP frames not decoded as L2TP (missing here): {' '.join(undecrypted)}")

with open(env["PPP_OUT"], "w") as o:
    o.write("\n".join([
        f"# {env['NAME']}: PPP frames carried in L2TP data messages (T=0), in capture order.",
        "# each frame line is the L2TP data payload exactly as it follows the L2TP header",
        "# (address/control FF 03 included when present).",
        *common,
        "# result.env:", *result_env(),
        "# client pppd.log (negotiation, authentication, addresses; 'sent' = client):",
        *pppd_lines(),
        "# credentials (interop README): user 'vpnuser', password 'vpnpass123' (MS-CHAPv2);",
        "#   the server's CHAP name is 'l2tpd'.",
        f"# {counts['ppp']} frames",
        "", *ppp_lines, ""]))
with open(env["CTL_OUT"], "w") as o:
    o.write("\n".join([
        f"# {env['NAME']}: L2TP control messages (T=1, including ZLB acks), in capture order;",
        "# each line is one complete L2TP message, from the first header byte to the end of the message.",
        *common,
        f"# {counts['ctl']} messages",
        "", *ctl_lines, ""]))
print(f"{env['NAME']}: {counts['ppp']} PPP frames -> {env['PPP_OUT']}")
print(f"{env['NAME']}: {counts['ctl']} control messages -> {env['CTL_OUT']}")
print(f"{env['NAME']}: PPP sequence: " + ", ".join(seq))
PY
