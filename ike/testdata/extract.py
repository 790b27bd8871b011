#!/usr/bin/env python3
"""Companion of extract.sh (run that, not this): turns the tshark outputs in $TMP plus the raw
pcap, charon.log, xfrm-state.txt, ... into the ike/testdata vectors. See README.md."""
import hashlib
import hmac
import ipaddress
import os
import re
import struct
import sys

env = os.environ
SAMPLE, NAME, PCAP, OUT, TMP = env["SAMPLE"], env["NAME"], env["PCAP"], env["OUT"], env["TMP"]
PSK = env.get("PSK", "interop-test-psk").encode()
ESP_COUNT = int(env.get("ESP_COUNT", "6"))

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    HAVE_CRYPTO = True
except ImportError:  # pragma: no cover
    HAVE_CRYPTO = False


def rd(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


# ---------------------------------------------------------------- raw pcap (classic, Ethernet)
def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        e = ">"
    else:
        sys.exit(f"{path}: not a classic pcap file (pcapng not supported)")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"{path}: linktype {linktype}, only Ethernet (1) supported")
    p, n, frames = 24, 0, {}
    while p + 16 <= len(data):
        ts, tus, incl, _orig = struct.unpack(e + "IIII", data[p:p + 16])
        p += 16
        n += 1
        frames[n] = data[p:p + incl]
        p += incl
    return frames


def parse_frame(fr):
    """-> dict(src, dst, proto, l4=bytes after IP header, sport, dport, udp_payload) or None"""
    et = struct.unpack(">H", fr[12:14])[0]
    off = 14
    while et == 0x8100:
        et = struct.unpack(">H", fr[off + 2:off + 4])[0]
        off += 4
    if et != 0x0800:
        return None
    ip = fr[off:]
    ihl = (ip[0] & 0xF) * 4
    tot = struct.unpack(">H", ip[2:4])[0]
    ip = ip[:tot]
    d = dict(src=str(ipaddress.IPv4Address(ip[12:16])), dst=str(ipaddress.IPv4Address(ip[16:20])),
             proto=ip[9], l4=ip[ihl:])
    if d["proto"] == 17:
        u = d["l4"]
        d["sport"], d["dport"], ulen = struct.unpack(">HHH", u[:6])
        d["udp_payload"] = u[8:ulen]
    return d


frames = read_pcap(PCAP)

conf = rd(os.path.join(SAMPLE, "ipsec.conf"))
m = re.search(r"^\s*left=([0-9.]+)\s*$", conf, re.M)
CLIENT = m.group(1) if m else None
m = re.search(r"^\s*right=([0-9.]+)\s*$", conf, re.M)
SERVER = m.group(1) if m else None

# ---------------------------------------------------------------- classify frames
isakmp_frames, esp_frames = [], []   # (frame no, parsed, bytes from first ISAKMP/ESP byte, note)
for n, fr in frames.items():
    d = parse_frame(fr)
    if not d:
        continue
    if CLIENT is None:
        CLIENT = d["src"]
    if d["proto"] == 50:
        esp_frames.append((n, d, d["l4"], "IP protocol 50"))
    elif d["proto"] == 17 and 500 in (d["sport"], d["dport"]):
        isakmp_frames.append((n, d, d["udp_payload"], ""))
    elif d["proto"] == 17 and 4500 in (d["sport"], d["dport"]):
        pl = d["udp_payload"]
        if len(pl) == 1 and pl == b"\xff":
            continue  # NAT-T keepalive
        if pl[:4] == b"\0\0\0\0":
            isakmp_frames.append((n, d, pl[4:], "UDP 4500: 4-byte non-ESP marker stripped"))
        else:
            esp_frames.append((n, d, pl, "ESP in UDP 4500 (RFC 3948), UDP header stripped"))


def direction(d):
    return "i>" if d["src"] == CLIENT else "r>"


# ---------------------------------------------------------------- tshark outputs
def tsv(path, ncol):
    rows = {}
    for line in rd(path).splitlines():
        if not line.strip():
            continue
        r = line.split("\t")
        r += [""] * (ncol - len(r))
        rows[int(r[0])] = r
    return rows


ts_isakmp = tsv(os.path.join(TMP, "isakmp.tsv"), 6)
ts_esp = tsv(os.path.join(TMP, "esp.tsv"), 14)

# "Decrypted IKE (N bytes):" blocks of `tshark -O isakmp -x`
ts_decrypted = {}
cur, block, want = None, None, 0
for line in rd(os.path.join(TMP, "isakmp.txt")).splitlines():
    m = re.match(r"^Frame (\d+): ", line)
    if m:
        cur, block = int(m.group(1)), None
        continue
    m = re.match(r"^Decrypted IKE \((\d+) bytes?\):", line)
    if m:
        block, want = bytearray(), int(m.group(1))
        ts_decrypted[cur] = block
        continue
    if block is not None:
        if re.match(r"^[0-9a-f]{4}  ", line):
            hexpart = line[6:6 + 47]
            block.extend(bytes.fromhex(hexpart.replace(" ", "")))
            del block[want:]
        else:
            block = None

# ---------------------------------------------------------------- ISAKMP decoding
PT = {1: "SA", 2: "P", 3: "T", 4: "KE", 5: "ID", 6: "CERT", 7: "CR", 8: "HASH", 9: "SIG",
      10: "NONCE", 11: "N", 12: "D", 13: "VID", 14: "ATTR", 15: "SAK", 20: "NAT-D", 21: "NAT-OA",
      130: "NAT-D(draft)", 131: "NAT-OA(draft)", 132: "FRAG"}
EXCH = {2: "Main Mode", 4: "Aggressive Mode", 5: "Informational", 6: "Transaction (Mode Config)",
        32: "Quick Mode", 33: "New Group Mode"}
P1_ENC = {1: "DES-CBC", 5: "3DES-CBC", 7: "AES-CBC"}
P1_HASH = {1: "MD5", 2: "SHA1", 4: "SHA2-256", 5: "SHA2-384", 6: "SHA2-512"}
P1_AUTH = {1: "PSK", 3: "RSA-SIG", 65001: "XAUTHInitPreShared"}
GROUPS = {1: "modp768", 2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072",
          16: "modp4096", 19: "ecp256", 20: "ecp384"}
ESP_T = {2: "DES", 3: "3DES", 11: "NULL", 12: "AES-CBC", 18: "AES-GCM-16", 20: "AES-GCM-8"}
P2_AUTH = {1: "HMAC-MD5", 2: "HMAC-SHA1", 5: "HMAC-SHA2-256", 6: "HMAC-SHA2-384",
           7: "HMAC-SHA2-512"}
P2_MODE = {1: "Tunnel", 2: "Transport", 3: "UDP-Encapsulated-Tunnel", 4: "UDP-Encapsulated-Transport",
           61443: "UDP-Encapsulated-Tunnel(draft)", 61444: "UDP-Encapsulated-Transport(draft)"}
NOTIFY = {24576: "RESPONDER-LIFETIME", 24577: "REPLAY-STATUS", 24578: "INITIAL-CONTACT",
          36136: "R-U-THERE", 36137: "R-U-THERE-ACK", 14: "NO-PROPOSAL-CHOSEN",
          16: "PAYLOAD-MALFORMED", 18: "INVALID-ID-INFORMATION", 23: "INVALID-HASH-INFORMATION"}
ID_T = {1: "IPV4_ADDR", 2: "FQDN", 3: "USER_FQDN", 4: "IPV4_SUBNET", 11: "KEY_ID"}


def attrs(b):
    out, p = [], 0
    while p + 4 <= len(b):
        t, v = struct.unpack(">HH", b[p:p + 4])
        if t & 0x8000:
            out.append((t & 0x7FFF, v))
            p += 4
        else:
            val = b[p + 4:p + 4 + v]
            out.append((t, int.from_bytes(val, "big") if len(val) <= 8 else val))
            p += 4 + v
    return out


def fmt_p1_attrs(a):
    s = []
    for t, v in a:
        if t == 1: s.append(f"enc={P1_ENC.get(v, v)}")
        elif t == 2: s.append(f"hash={P1_HASH.get(v, v)}")
        elif t == 3: s.append(f"auth={P1_AUTH.get(v, v)}")
        elif t == 4: s.append(f"group={v}({GROUPS.get(v, '?')})")
        elif t == 11: s.append(f"life-type={ {1: 'seconds', 2: 'kilobytes'}.get(v, v)}")
        elif t == 12: s.append(f"life={v}")
        elif t == 14: s.append(f"keylen={v}")
        else: s.append(f"attr{t}={v}")
    return " ".join(s)


def fmt_p2_attrs(a):
    s = []
    for t, v in a:
        if t == 1: s.append(f"life-type={ {1: 'seconds', 2: 'kilobytes'}.get(v, v)}")
        elif t == 2: s.append(f"life={v}")
        elif t == 3: s.append(f"group={v}")
        elif t == 4: s.append(f"mode={P2_MODE.get(v, v)}")
        elif t == 5: s.append(f"auth={P2_AUTH.get(v, v)}")
        elif t == 6: s.append(f"keylen={v}")
        else: s.append(f"attr{t}={v}")
    return " ".join(s)


def parse_sa(body):
    """SA payload body (after the generic header) -> list of (propno, protoid, spi, [(tno, tid, attrs)])"""
    doi, sit = struct.unpack(">II", body[:8])
    props, p = [], 8
    while p + 8 <= len(body):
        nxt, _r, plen = struct.unpack(">BBH", body[p:p + 4])
        pn, proto, spisz, nt = body[p + 4:p + 8]
        spi = body[p + 8:p + 8 + spisz]
        ts, q = [], p + 8 + spisz
        while q + 8 <= p + plen:
            tn, _r2, tlen = struct.unpack(">BBH", body[q:q + 4])
            tno, tid = body[q + 4], body[q + 5]
            ts.append((tno, tid, attrs(body[q + 8:q + tlen])))
            q += tlen
            if tn == 0:
                break
        props.append((pn, proto, spi, ts))
        p += plen
        if nxt == 0:
            break
    return doi, sit, props


def chain(first, b):
    """-> ([(type, payload body without generic header, whole payload)], trailing bytes)"""
    out, p, t = [], 0, first
    while t != 0 and p + 4 <= len(b):
        nxt, _r, plen = struct.unpack(">BBH", b[p:p + 4])
        if plen < 4 or p + plen > len(b):
            out.append((t, None, b[p:]))
            return out, b""
        out.append((t, b[p + 4:p + plen], b[p:p + plen]))
        p += plen
        t = nxt
    return out, b[p:]


def describe(pl, vids, phase):
    """one-line description per payload"""
    lines, vi = [], 0
    for t, body, whole in pl:
        name = PT.get(t, f"type{t}")
        if body is None:
            lines.append(f"{name}: malformed ({len(whole)} bytes left)")
            continue
        if t == 1:
            doi, sit, props = parse_sa(body)
            s = f"SA doi={doi} situation={sit}:"
            for pn, proto, spi, ts in props:
                s += f" [prop {pn} proto={ {1: 'ISAKMP', 3: 'ESP', 2: 'AH'}.get(proto, proto)}"
                if spi:
                    s += f" spi={spi.hex()}"
                for tno, tid, a in ts:
                    if proto == 1:
                        s += f" (T{tno} {fmt_p1_attrs(a)})"
                    else:
                        s += f" (T{tno} {ESP_T.get(tid, tid)} {fmt_p2_attrs(a)})"
                s += "]"
            lines.append(s)
        elif t == 4:
            lines.append(f"KE {len(body)} bytes")
        elif t == 10:
            lines.append(f"NONCE {len(body)} bytes {body.hex()}")
        elif t == 5:
            it, proto, port = body[0], body[1], struct.unpack(">H", body[2:4])[0]
            data = body[4:]
            dv = str(ipaddress.IPv4Address(data)) if it == 1 and len(data) == 4 else data.hex()
            lines.append(f"ID {ID_T.get(it, it)} proto={proto} port={port} {dv}")
        elif t == 8:
            lines.append(f"HASH {len(body)} bytes {body.hex()}")
        elif t == 11:
            doi, proto, spisz, mt = struct.unpack(">IBBH", body[:8])
            spi = body[8:8 + spisz]
            lines.append(f"N {NOTIFY.get(mt, mt)} proto={proto} spi={spi.hex()}"
                         + (f" data={body[8 + spisz:].hex()}" if body[8 + spisz:] else ""))
        elif t == 12:
            doi, proto, spisz, n = struct.unpack(">IBBH", body[:8])
            spis = [body[8 + i * spisz:8 + (i + 1) * spisz].hex() for i in range(n)]
            lines.append(f"D proto={proto} spis={','.join(spis)}")
        elif t == 13:
            vn = vids[vi] if vi < len(vids) else ""
            vi += 1
            lines.append(f"VID {body.hex()}" + (f" ({vn})" if vn else ""))
        elif t in (20, 130):
            lines.append(f"NAT-D {body.hex()}")
        elif t in (21, 131):
            it = body[0]
            dv = str(ipaddress.IPv4Address(body[4:8])) if it == 1 else body[4:].hex()
            lines.append(f"NAT-OA type={it} {dv}")
        else:
            lines.append(f"{name} {len(body)} bytes")
    return lines


def ts_payload_list(row):
    tps = [int(x) for x in row[1].split("|") if x.strip().isdigit()]
    return [PT.get(t, f"type{t}") for t in tps if t not in (2, 3)]


# ---------------------------------------------------------------- key schedule helpers
HASHES = {1: hashlib.md5, 2: hashlib.sha1, 4: hashlib.sha256, 5: hashlib.sha384, 6: hashlib.sha512}


def prf(h, k, m):
    return hmac.new(k, m, h).digest()


def expand(h, k, seed, n):
    """RFC 2409 appendix B / KEYMAT style expansion: K1 = prf(k, seed), K2 = prf(k, K1|seed)..."""
    out, last = b"", b""
    while len(out) < n:
        last = prf(h, k, last + seed)
        out += last
    return out[:n]


def expand_ka(h, skeyid_e, n):
    """RFC 2409 appendix B: Ka = K1|K2.. with K1 = prf(SKEYID_e, 0), Kn+1 = prf(SKEYID_e, Kn)"""
    if len(skeyid_e) >= n:
        return skeyid_e[:n]
    out, last = b"", b"\0"
    while len(out) < n:
        last = prf(h, skeyid_e, last)
        out += last
    return out[:n]


def cbc_decrypt(alg, key, iv, ct):
    if not HAVE_CRYPTO:
        return None
    if alg == 7:
        c = algorithms.AES(key)
    elif alg == 5:
        try:
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
        except ImportError:
            TripleDES = algorithms.TripleDES
        c = TripleDES(key)
    else:
        return None
    d = Cipher(c, modes.CBC(iv)).decryptor()
    return d.update(ct) + d.finalize()


# ---------------------------------------------------------------- walk the ISAKMP messages
msgs = []          # dicts
seen = {}          # bytes -> first frame
counters = {}      # exchange key -> message count
for n, d, b, note in isakmp_frames:
    ispi, rspi = b[:8], b[8:16]
    np, ver, ex, flags = b[16], b[17], b[18], b[19]
    mid, length = struct.unpack(">II", b[20:28])
    key = (ispi, ex, 0 if ex == 2 else mid)
    retrans = seen.get(b)
    if retrans is None:
        seen[b] = n
        counters[key] = counters.get(key, 0) + 1
        num = counters[key]
    else:
        num = next(m["num"] for m in msgs if m["frame"] == retrans)
    msgs.append(dict(frame=n, d=d, b=b, note=note, ispi=ispi, rspi=rspi, np=np, ex=ex,
                     flags=flags, mid=mid, length=length, num=num, retrans=retrans,
                     enc=bool(flags & 1)))

# negotiated phase 1 (responder's SA in Main Mode message 2) and the first Main Mode message
p1 = dict(enc=None, keylen=None, hash=None, group=None, auth=None, attrs=[])
sai_b = None
for mm in msgs:
    if mm["ex"] == 2 and not mm["enc"]:
        pl, _ = chain(mm["np"], mm["b"][28:mm["length"]])
        for t, body, _w in pl:
            if t == 1 and body is not None:
                if mm["num"] == 1 and sai_b is None:
                    sai_b = body
                if mm["num"] == 2:
                    _doi, _sit, props = parse_sa(body)
                    a = dict(props[0][3][0][2])
                    p1.update(enc=a.get(1), keylen=a.get(14), hash=a.get(2), group=a.get(4),
                              auth=a.get(3), attrs=props[0][3][0][2])
H = HASHES.get(p1["hash"], hashlib.sha1)
BS = 16 if p1["enc"] == 7 else 8
KEYLEN = (p1["keylen"] // 8) if p1["keylen"] else {5: 24, 1: 8}.get(p1["enc"], 16)

# ---------------------------------------------------------------- charon.log dumps
charon = rd(os.path.join(SAMPLE, "charon.log")).splitlines()
dumps = []   # (name, bytes, lineno, time, thread)
i = 0
while i < len(charon):
    m = re.match(r"^(\S+) (\d+)\[IKE\] <[^>]*> (.+?) => (\d+) bytes @ 0x[0-9a-f]+$", charon[i])
    if m:
        tm, th, nm, ln = m.group(1), m.group(2), m.group(3), int(m.group(4))
        data, j = bytearray(), i + 1
        while j < len(charon) and len(data) < ln:
            mm = re.match(r"^\S+ \d+\[IKE\] <[^>]*>\s+\d+: ((?:[0-9A-F]{2} )*[0-9A-F]{2})", charon[j])
            if not mm:
                break
            data.extend(bytes.fromhex(mm.group(1).replace(" ", "")))
            j += 1
        dumps.append((nm, bytes(data[:ln]), i + 1, tm, th))
        i = j
        continue
    i += 1


def dump(name, idx=0):
    hits = [x for x in dumps if x[0] == name]
    return hits[idx] if len(hits) > idx else None


ck = {}  # name -> (value bytes, provenance)
dhs = dump("shared Diffie Hellman secret")
skeyid = dump("SKEYID")
ka_log = dump("encryption key Ka")
iv0_log = dump("initial IV")

# pieces from the capture
gxi = gxr = ni = nr = None
for mm in msgs:
    if mm["ex"] == 2 and not mm["enc"] and mm["retrans"] is None:
        pl, _ = chain(mm["np"], mm["b"][28:mm["length"]])
        for t, body, _w in pl:
            if t == 4:
                if mm["num"] == 3: gxi = (body, mm["frame"])
                if mm["num"] == 4: gxr = (body, mm["frame"])
            if t == 10:
                if mm["num"] == 3: ni = (body, mm["frame"])
                if mm["num"] == 4: nr = (body, mm["frame"])

# phase 1 keys, recomputed from the capture + PSK + the logged DH secret
calc = {}
cky_i = msgs[0]["ispi"] if msgs else b""
cky_r = next((m["rspi"] for m in msgs if m["rspi"] != b"\0" * 8), b"")
if ni and nr:
    calc["SKEYID"] = prf(H, PSK, ni[0] + nr[0])
    if dhs:
        gxy = dhs[1]
        calc["SKEYID_d"] = prf(H, calc["SKEYID"], gxy + cky_i + cky_r + b"\0")
        calc["SKEYID_a"] = prf(H, calc["SKEYID"], calc["SKEYID_d"] + gxy + cky_i + cky_r + b"\1")
        calc["SKEYID_e"] = prf(H, calc["SKEYID"], calc["SKEYID_a"] + gxy + cky_i + cky_r + b"\2")
        calc["Ka"] = expand_ka(H, calc["SKEYID_e"], KEYLEN)
if gxi and gxr:
    calc["IV0"] = H(gxi[0] + gxr[0]).digest()[:BS]
table_key = None
tline = rd(os.path.join(SAMPLE, "wireshark", "ikev1_decryption_table")).strip().splitlines()
if tline:
    tck, tkey = tline[0].split(",")[:2]
    table_key = (tck.strip().strip('"'), bytes.fromhex(tkey.strip().strip('"')))
ka = calc.get("Ka") or (ka_log[1] if ka_log else None) or (table_key[1] if table_key else None)
iv0 = calc.get("IV0") or (iv0_log[1] if iv0_log else None)

# independent decryption (cross-check of tshark, and plaintext of retransmissions)
own_plain, own_iv = {}, {}
p1_last = None
iv_state = {}
for mm in msgs:
    if not mm["enc"] or ka is None or iv0 is None:
        continue
    ct = mm["b"][28:mm["length"]]
    ekey = (mm["ex"], mm["mid"]) if mm["ex"] != 2 else (2, 0)
    if mm["retrans"] is not None:
        own_plain[mm["frame"]] = own_plain.get(mm["retrans"])
        own_iv[mm["frame"]] = own_iv.get(mm["retrans"])
        continue
    if ekey == (2, 0):
        iv = iv_state.get(ekey, iv0)
    else:
        if ekey not in iv_state:
            iv_state[ekey] = H(p1_last + struct.pack(">I", mm["mid"])).digest()[:BS]
        iv = iv_state[ekey]
    own_iv[mm["frame"]] = iv
    own_plain[mm["frame"]] = cbc_decrypt(p1["enc"], ka, iv, ct)
    iv_state[ekey] = ct[-BS:]
    if mm["ex"] == 2:
        p1_last = ct[-BS:]

# plaintext per frame: tshark's unless it is missing/garbled (then the own one)
plain, plain_src = {}, {}
for mm in msgs:
    if not mm["enc"]:
        continue
    f = mm["frame"]
    t = ts_decrypted.get(f)
    o = own_plain.get(f)
    malformed = bool(ts_isakmp.get(f, [""] * 6)[4].strip())
    if t is not None and not malformed and (o is None or bytes(t) == o):
        plain[f], plain_src[f] = bytes(t), "tshark" + (" (== own AES-CBC decryption)" if o else "")
    elif o is not None:
        plain[f] = o
        why = "tshark output missing" if t is None else (
            "tshark's decryption is garbled (Malformed Packet)" if malformed else
            "tshark's decryption DIFFERS")
        plain_src[f] = f"own decryption with Ka + IV {own_iv[f].hex()} ({why})"
        if mm["retrans"] is not None:
            plain_src[f] += (f"; byte-identical retransmission of frame {mm['retrans']}: tshark"
                             " chains the IV from the previous copy, so its first block is wrong")
    elif t is not None:
        plain[f], plain_src[f] = bytes(t), "tshark (NOT cross-checked)"

# ---------------------------------------------------------------- write NAME-isakmp*.hex
hdr_common = [
    f"# source: {PCAP}",
    f"# client = IKE initiator (strongSwan 5.9.8 charon): {CLIENT}   server = responder: {SERVER}",
    "# line format: '# ...' comment(s), then 'i> <hex>' (sent by the client/initiator) or",
    "#   'r> <hex>' (sent by the server/responder); lowercase hex, no spaces.",
    f"# made by ike/testdata/extract.sh with {env.get('TSHARK_VERSION', 'tshark')}",
]
lines_raw, lines_dec = [], []
enc_total = enc_ok = 0
for mm in msgs:
    d, f = mm["d"], mm["frame"]
    exn = EXCH.get(mm["ex"], f"exchange {mm['ex']}")
    row = ts_isakmp.get(f, [str(f), "", "", "", "", ""])
    tsl = ts_payload_list(row)
    vids = [v.replace("\\n", "") for v in row[2].split("|") if v]
    malformed = bool(row[4].strip())
    head = (f"# frame {f} {d['src']}:{d['sport']} -> {d['dst']}:{d['dport']} {exn} ({mm['ex']})"
            f" message {mm['num']} mid=0x{mm['mid']:08x} flags=0x{mm['flags']:02x}"
            f" len={mm['length']}" + (f" [{mm['note']}]" if mm["note"] else "")
            + (f" [retransmission of frame {mm['retrans']}]" if mm["retrans"] else ""))
    lines_raw.append(head)
    body = mm["b"][28:mm["length"]]
    if mm["enc"]:
        enc_total += 1
        p = plain.get(f)
        pl, trail = chain(mm["np"], p) if p is not None else ([], b"")
        ok = p is not None and all(x[1] is not None for x in pl)
        enc_ok += ok
        own_list = [PT.get(x[0], str(x[0])) for x in pl]
        lines_raw.append(f"#   encrypted ({len(body)} bytes); tshark decrypts it (ikev1_decryption_table):"
                         f" [{', '.join(tsl)}]" + (" MALFORMED (wrong IV, see -decrypted.hex)" if malformed else ""))
        if p is not None and (malformed or own_list != tsl):
            lines_raw.append(f"#   correct decrypted payload list: [{', '.join(own_list)}]")
        lines_dec.append(head)
        lines_dec.append(f"#   plaintext source: {plain_src.get(f, 'none')}")
        lines_dec.append(f"#   payloads: [{', '.join(own_list)}] + {len(trail)} bytes padding"
                         + (f" ({trail.hex()})" if trail else ""))
        for s in describe(pl, vids, 2 if mm["ex"] != 2 else 1):
            lines_dec.append(f"#     {s}")
        if p is not None:
            lines_dec.append(f"{direction(d)} {p.hex()}")
        else:
            lines_dec.append("# (no plaintext available)")
    else:
        pl, trail = chain(mm["np"], body)
        lines_raw.append(f"#   cleartext; tshark payloads: [{', '.join(tsl)}]")
        for s in describe(pl, vids, 1):
            lines_raw.append(f"#     {s}")
        if trail:
            lines_raw.append(f"#     + {len(trail)} trailing bytes")
    extra = mm["b"][mm["length"]:]
    if extra:
        lines_raw.append(f"#   NOTE: {len(extra)} bytes after the ISAKMP length")
    lines_raw.append(f"{direction(d)} {mm['b'].hex()}")

with open(os.path.join(OUT, f"{NAME}-isakmp.hex"), "w") as o:
    o.write("\n".join([
        f"# {NAME}: every ISAKMP (IKEv1) message in capture order, the raw bytes from the first",
        "# ISAKMP header byte (the UDP payload; for UDP 4500 the 4-byte non-ESP marker 00000000 is",
        "# stripped, noted per message). Comment: pcap frame, UDP ports, exchange type, message",
        "# number within the exchange (Main Mode 1..6 per cookie pair, Quick Mode / Informational per",
        "# message ID; a byte-identical retransmission keeps the number of its original), tshark's",
        "# payload list, and for cleartext messages a decode of each payload by extract.py.",
        *hdr_common,
        f"# {len(msgs)} messages, {enc_total} encrypted", "", *lines_raw, ""]))
with open(os.path.join(OUT, f"{NAME}-isakmp-decrypted.hex"), "w") as o:
    o.write("\n".join([
        f"# {NAME}: decrypted body of every ENCRYPTED ISAKMP message, in capture order: the",
        "# plaintext payload chain exactly as the CBC decryption yields it (payloads + the sender's",
        "# padding), i.e. the bytes after the 28-byte ISAKMP header, decrypted. Taken from tshark's",
        "# 'Decrypted IKE' data source (tshark -x), cross-checked by extract.py's own CBC decryption",
        "# (key Ka + IV chain of RFC 2409 appendix B; see the -keys.txt file).",
        *hdr_common,
        f"# {enc_total} encrypted messages, {enc_ok} decrypted to a well-formed payload chain", "",
        *lines_dec, ""]))

# ---------------------------------------------------------------- ESP
esp_lines, espp_lines = [], []
esp_total = len(esp_frames)
esp_dec = sum(1 for n, *_ in esp_frames if ts_esp.get(n, [""] * 14)[8])
esp_icv_good = sum(1 for n, *_ in esp_frames if ts_esp.get(n, [""] * 14)[5] in ("1", "True"))
esp_sa_tab = {}
for line in rd(os.path.join(SAMPLE, "wireshark", "esp_sa")).splitlines():
    f = [x.strip('"') for x in line.split('","')]
    if len(f) >= 8:
        esp_sa_tab[int(f[3], 16)] = dict(enc=f[4], ekey=bytes.fromhex(f[5][2:]), auth=f[6],
                                         akey=bytes.fromhex(f[7][2:]))
AUTH_ALG = {"HMAC-SHA-1-96": (hashlib.sha1, 12), "HMAC-SHA-256-128": (hashlib.sha256, 16),
            "HMAC-SHA-384-192": (hashlib.sha384, 24), "HMAC-SHA-512-256": (hashlib.sha512, 32),
            "HMAC-MD5-96": (hashlib.md5, 12)}
for n, d, b, note in esp_frames[:ESP_COUNT]:
    r = ts_esp.get(n, [str(n)] + [""] * 13)
    spi, seq = struct.unpack(">II", b[:8])
    sa = esp_sa_tab.get(spi, {})
    ivlen = 16 if "AES" in sa.get("enc", "AES") else 8
    ah = next((v for k2, v in AUTH_ALG.items() if sa.get("auth", "").startswith(k2)), (hashlib.sha1, 12))
    iv = b[8:8 + ivlen]
    icv = b[-ah[1]:]
    inner = f"{r[12]}: {' '.join(r[13].split())}"
    icv_s = "good" if r[5] in ("1", "True") else ("BAD" if r[6] in ("1", "True") else "unchecked")
    own = ""
    if sa:
        mac_ok = hmac.new(sa["akey"], b[:-ah[1]], ah[0]).digest()[:ah[1]] == icv
        own = f"; own check: ICV {'ok' if mac_ok else 'BAD'}"
        if HAVE_CRYPTO and ivlen == 16 and r[7]:
            pt = cbc_decrypt(7, sa["ekey"], iv, b[8 + ivlen:-ah[1]])
            own += f", own AES-CBC plaintext {'== tshark' if pt == bytes.fromhex(r[7]) else 'DIFFERS from tshark'}"
    c = (f"# frame {n} {d['src']} -> {d['dst']} ({note}) spi=0x{spi:08x} seq={seq} iv={iv.hex()}"
         f" icv={icv.hex()} ({sa.get('auth', '?')}, tshark: {icv_s}{own}) len={len(b)}")
    esp_lines += [c, f"#   decrypted by tshark: {inner}", f"{direction(d)} {b.hex()}"]
    cont, dec = r[8], r[7]
    padlen, nh, pad = r[10], r[11], r[9]
    espp_lines.append(c.replace(f" icv={icv.hex()}", ""))
    espp_lines.append(f"#   inner: {inner}")
    if cont:
        full = bytes.fromhex(dec)
        cb = bytes.fromhex(cont)
        trailer = full[len(cb):]
        espp_lines.append(f"#   ESP trailer after this payload: pad={pad or '(none)'} pad_len={padlen}"
                          f" next_header={nh} -> full plaintext = line + {trailer.hex()}")
        espp_lines.append(f"{direction(d)} {cb.hex()}")
    else:
        espp_lines.append("# (tshark did not decrypt this packet)")
esp_head = [
    f"# source: {PCAP}",
    f"# client: {CLIENT}   server: {SERVER}   ('i>' = sent by the client, 'r>' = sent by the server)",
    f"# ESP SAs: see {NAME}-keys.txt (esp_* keys); transport mode",
    f"# made by ike/testdata/extract.sh with {env.get('TSHARK_VERSION', 'tshark')}",
    f"# capture holds {esp_total} ESP packets; tshark decrypted {esp_dec}, ICV verified good on {esp_icv_good}",
]
with open(os.path.join(OUT, f"{NAME}-esp.hex"), "w") as o:
    o.write("\n".join([
        f"# {NAME}: the first {ESP_COUNT} ESP packets (both directions), in capture order, from the",
        "# first SPI byte to the last ICV byte (plain ESP: the IP payload; ESP-in-UDP: after the",
        "# 8-byte UDP header). Layout: SPI(4) seq(4) IV(16 for AES-CBC) ciphertext ICV(12 for HMAC-SHA1-96).",
        *esp_head, "", *esp_lines, ""]))
with open(os.path.join(OUT, f"{NAME}-esp-plain.hex"), "w") as o:
    o.write("\n".join([
        f"# {NAME}: for the same packets as {NAME}-esp.hex, the decrypted ESP payload as tshark",
        "# exposes it in esp.contained_data: the inner UDP header (1701 -> 1701) + the L2TP message,",
        "# WITHOUT the ESP trailer (pad, pad length, next header), which is given in the comment.",
        *esp_head, "", *espp_lines, ""]))

# ---------------------------------------------------------------- keys
K = []


def kv(k, v, *comments):
    for c in comments:
        K.append(f"# {c}")
    K.append(f"{k} = {v}")


def check(name, logged, computed):
    if logged is None or computed is None:
        return "not checked"
    return "matches" if logged == computed else f"MISMATCH (computed {computed.hex()})"


resenv = rd(os.path.join(SAMPLE, "result.env"))
ike_prop = re.search(r'^IKE_PROPOSAL="?([^"\n]*)', resenv, re.M)
esp_prop = re.search(r'^ESP_PROPOSAL="?([^"\n]*)', resenv, re.M)
K += [f"# {NAME}: IKEv1 + ESP key material for {os.path.basename(PCAP)}",
      f"# source: {SAMPLE}",
      "# format: 'key = value' (hex lowercase, no 0x unless a SPI), comments give provenance.",
      "# 'charon.log:N' = line N of the strongSwan client's charon.log (debug dumps 'NAME => n bytes').",
      "# 'computed' = recomputed by extract.py from capture + PSK + logged DH secret (RFC 2409).",
      f"# made by ike/testdata/extract.sh", ""]
K.append("## endpoints and negotiated proposals")
kv("client_ip", CLIENT, "ipsec.conf left= (IKE initiator, L2TP LAC)")
kv("server_ip", SERVER, "ipsec.conf right= (IKE responder, L2TP LNS)")
if ike_prop:
    kv("ike_proposal", ike_prop.group(1), "result.env IKE_PROPOSAL (charon 'selected proposal')")
kv("ike_proposal_wire", fmt_p1_attrs(p1["attrs"]), "responder's SA transform in Main Mode message 2")
if esp_prop:
    kv("esp_proposal", esp_prop.group(1), "result.env ESP_PROPOSAL")
m = re.search(r"^\s*ike=(.*)$", conf, re.M)
if m:
    kv("client_ike_offer", m.group(1).strip(), "ipsec.conf ike=")
m = re.search(r"^\s*esp=(.*)$", conf, re.M)
if m:
    kv("client_esp_offer", m.group(1).strip(), "ipsec.conf esp=")
K.append("")
K.append("## phase 1 (Main Mode)")
psk_ok = calc.get("SKEYID") is not None and skeyid is not None and calc["SKEYID"] == skeyid[1]
kv("psk", PSK.decode(), "interop README (INTEROP_PSK default); not in the sample files",
   f"verified: prf(psk, Ni_b | Nr_b) == SKEYID of charon.log: {'yes' if psk_ok else 'NO'}")
kv("cky_i", cky_i.hex(), f"initiator cookie, ISAKMP header of frame {msgs[0]['frame'] if msgs else '?'}")
kv("cky_r", cky_r.hex(), "responder cookie, ISAKMP header of Main Mode message 2")
kv("ike_encryption_algorithm", f"{P1_ENC.get(p1['enc'], p1['enc'])}-{KEYLEN * 8}",
   "from the negotiated SA (ikev1_decryption_table has no algorithm column)")
kv("ike_hash_prf", f"HMAC-{P1_HASH.get(p1['hash'], p1['hash'])}", "negotiated SA hash attribute (prf = HMAC of it)")
kv("ike_dh_group", f"{p1['group']} ({GROUPS.get(p1['group'], '?')})", "negotiated SA")
kv("ike_auth", P1_AUTH.get(p1["auth"], str(p1["auth"])), "negotiated SA")
if table_key:
    kv("ike_encryption_key", table_key[1].hex(),
       f"wireshark/ikev1_decryption_table (cookie {table_key[0]}); == charon 'encryption key Ka':"
       f" {check('', ka_log[1] if ka_log else None, table_key[1])}; == computed Ka: "
       f"{check('', calc.get('Ka'), table_key[1])}")
if gxi:
    kv("g_xi", gxi[0].hex(), f"KE payload of Main Mode message 3 (frame {gxi[1]}, client public value);"
       f" == first {len(gxi[0])} bytes of charon 'HASH_I data': "
       + check("", dump("HASH_I data")[1][:len(gxi[0])] if dump("HASH_I data") else None, gxi[0]))
if gxr:
    kv("g_xr", gxr[0].hex(), f"KE payload of Main Mode message 4 (frame {gxr[1]}, server public value)")
if ni:
    kv("ni_b", ni[0].hex(), f"Nonce payload body, Main Mode message 3 (frame {ni[1]})")
if nr:
    kv("nr_b", nr[0].hex(), f"Nonce payload body, Main Mode message 4 (frame {nr[1]})")
if sai_b:
    kv("sai_b", sai_b.hex(), "SA payload body (after the 4-byte generic header) of Main Mode message 1; input of HASH_I/HASH_R")
if dhs:
    kv("dh_shared_secret", dhs[1].hex(), f"charon.log:{dhs[2]} 'shared Diffie Hellman secret' (g^xy)",
       "the DH private values are not logged anywhere")
for nm, key in (("SKEYID", "skeyid"), ("SKEYID_d", "skeyid_d"), ("SKEYID_a", "skeyid_a"),
                ("SKEYID_e", "skeyid_e")):
    dd = dump(nm)
    if dd:
        kv(key, dd[1].hex(), f"charon.log:{dd[2]} '{nm}'; computed: {check('', dd[1], calc.get(nm))}")
if ka_log:
    kv("ka", ka_log[1].hex(), f"charon.log:{ka_log[2]} 'encryption key Ka' ({KEYLEN} bytes; "
       + ("== SKEYID_e" if dump("SKEYID_e") and len(dump("SKEYID_e")[1]) >= KEYLEN else
          "SKEYID_e shorter than the key: K1 = prf(SKEYID_e, 0x00), K2 = prf(SKEYID_e, K1)")
       + f"); computed: {check('', ka_log[1], calc.get('Ka'))}")
if iv0_log:
    kv("phase1_iv", iv0_log[1].hex(), f"charon.log:{iv0_log[2]} 'initial IV' = {H().name}(g^xi | g^xr)[:{BS}];"
       f" computed: {check('', iv0_log[1], calc.get('IV0'))}")
# IDs and HASH_I/R from the decrypted Main Mode 5/6
for mm in msgs:
    if mm["ex"] == 2 and mm["enc"] and mm["retrans"] is None and plain.get(mm["frame"]):
        pl, _ = chain(mm["np"], plain[mm["frame"]])
        for t, body, _w in pl:
            if t == 5:
                kv("idii_b" if mm["num"] == 5 else "idir_b", body.hex(),
                   f"ID payload body, decrypted Main Mode message {mm['num']} (frame {mm['frame']})")
            if t == 8:
                nm = "HASH_I" if mm["num"] == 5 else "HASH_R"
                dd = dump(nm)
                comp = None
                if calc.get("SKEYID") and gxi and gxr and sai_b:
                    ids = {}
                    for m2 in msgs:
                        if m2["ex"] == 2 and m2["enc"] and plain.get(m2["frame"]):
                            for t2, b2, _ in chain(m2["np"], plain[m2["frame"]])[0]:
                                if t2 == 5:
                                    ids[m2["num"]] = b2
                    if nm == "HASH_I" and 5 in ids:
                        comp = prf(H, calc["SKEYID"], gxi[0] + gxr[0] + cky_i + cky_r + sai_b + ids[5])
                    if nm == "HASH_R" and 6 in ids:
                        comp = prf(H, calc["SKEYID"], gxr[0] + gxi[0] + cky_r + cky_i + sai_b + ids[6])
                kv(nm.lower(), body.hex(), f"HASH payload, decrypted Main Mode message {mm['num']} (frame {mm['frame']});"
                   f" charon.log:{dd[2] if dd else '?'} '{nm}': {check('', dd[1] if dd else None, body)};"
                   f" computed prf(SKEYID, ...): {check('', body, comp)}")
for mm in msgs:
    if mm["ex"] == 2 and mm["enc"] and mm["retrans"] is None and mm["frame"] in own_iv:
        kv(f"iv_mm{mm['num']}", own_iv[mm["frame"]].hex(),
           f"CBC IV used for Main Mode message {mm['num']} (frame {mm['frame']}): "
           + ("phase1_iv" if mm["num"] == 5 else "last ciphertext block of the previous message"))
K.append("")
K.append("## phase 2 (Quick Mode) and ESP")
qm = [mm for mm in msgs if mm["ex"] == 32 and mm["retrans"] is None]
qmv = {}
for mm in qm:
    p = plain.get(mm["frame"])
    if not p:
        continue
    pl, _ = chain(mm["np"], p)
    if mm["num"] == 1:
        kv("qm_mid", f"0x{mm['mid']:08x}", f"Quick Mode message ID ({mm['mid']} in charon.log)")
        kv("qm_iv", own_iv[mm["frame"]].hex() if mm["frame"] in own_iv else "?",
           f"{H().name}(last CBC block of Main Mode message 6 | M-ID)[:{BS}]; == first charon 'next IV for MID "
           f"{mm['mid']}': {check('', dump('next IV for MID ' + str(mm['mid']))[1] if dump('next IV for MID ' + str(mm['mid'])) else None, own_iv.get(mm['frame']))}")
    for t, body, whole in pl:
        if t == 10:
            qmv[f"n{'i' if mm['num'] == 1 else 'r'}2"] = body
            kv(f"qm_n{'i' if mm['num'] == 1 else 'r'}_b", body.hex(),
               f"Nonce payload body, decrypted Quick Mode message {mm['num']} (frame {mm['frame']})")
        if t == 8:
            qmv[f"hash{mm['num']}"] = body
            nm = f"Hash({mm['num']})"
            dd = dump(nm)
            kv(f"qm_hash{mm['num']}", body.hex(), f"HASH({mm['num']}) payload, frame {mm['frame']};"
               f" charon.log:{dd[2] if dd else '?'} '{nm}': {check('', dd[1] if dd else None, body)}")
        if t == 1:
            _doi, _sit, props = parse_sa(body)
            spi = props[0][2]
            who = "client" if mm["d"]["src"] == CLIENT else "server"
            qmv[f"spi_{who}"] = spi
            qmv[f"sa{mm['num']}"] = props
        if t == 5:
            qmv.setdefault(f"ids{mm['num']}", []).append(body)
        if t in (21, 131):
            qmv.setdefault(f"natoa{mm['num']}", []).append(body)
# QM hash checks
skeyid_a = dump("SKEYID_a")[1] if dump("SKEYID_a") else calc.get("SKEYID_a")
skeyid_d = dump("SKEYID_d")[1] if dump("SKEYID_d") else calc.get("SKEYID_d")
if qm and skeyid_a and "ni2" in qmv and "nr2" in qmv:
    midb = struct.pack(">I", qm[0]["mid"])
    res = []
    for mm in qm:
        p = plain.get(mm["frame"])
        if not p:
            continue
        pl, _ = chain(mm["np"], p)
        rest = b"".join(w for t, b2, w in pl[1:])
        if mm["num"] == 1:
            c = prf(H, skeyid_a, midb + rest)
        elif mm["num"] == 2:
            c = prf(H, skeyid_a, midb + qmv["ni2"] + rest)
        else:
            c = prf(H, skeyid_a, b"\0" + midb + qmv["ni2"] + qmv["nr2"])
        res.append(f"HASH({mm['num']}) {check('', qmv.get('hash' + str(mm['num'])), c)}")
    K.append("# computed QM hashes (HASH(1)=prf(SKEYID_a, M-ID|SA|Ni|IDci|IDcr[|NAT-OA..]),"
             " HASH(2)=prf(SKEYID_a, M-ID|Ni_b|SA|Nr|IDs), HASH(3)=prf(SKEYID_a, 0|M-ID|Ni_b|Nr_b)): "
             + ", ".join(res))
for k2 in ("ids1", "natoa1"):
    if k2 in qmv:
        kv("qm_" + ("id_ci_cr" if k2 == "ids1" else "nat_oa_i"), ",".join(x.hex() for x in qmv[k2]),
           "payload bodies from decrypted Quick Mode message 1")

# ESP SAs: esp_sa table + xfrm-state.txt + KEYMAT recomputation
esp_sa = []
for line in rd(os.path.join(SAMPLE, "wireshark", "esp_sa")).splitlines():
    f = [x.strip('"') for x in line.split('","')]
    if len(f) >= 8:
        esp_sa.append(dict(src=f[1], dst=f[2], spi=f[3].lower(), enc=f[4], ekey=f[5][2:].lower(),
                           auth=f[6], akey=f[7][2:].lower()))
xfrm = rd(os.path.join(SAMPLE, "xfrm-state.txt"))
xs = {}
for blk in re.split(r"(?m)^(?=src )", xfrm):
    m = re.search(r"spi (0x[0-9a-f]+)", blk)
    if not m:
        continue
    a = re.search(r"auth-trunc (\S+) (0x[0-9a-f]+) \((\d+) bits\) (\d+)", blk)
    e = re.search(r"enc (\S+) (0x[0-9a-f]+) \((\d+) bits\)", blk)
    encap = re.search(r"encap type (\S+) sport (\d+) dport (\d+)", blk)
    xs[m.group(1)] = dict(auth=a.groups() if a else None, enc=e.groups() if e else None,
                          encap=encap.groups() if encap else None)
for sa in esp_sa:
    dirn = "out" if sa["src"] == CLIENT else "in"
    chooser = "server (responder's SA in Quick Mode message 2)" if dirn == "out" else \
        "client (initiator's SA in Quick Mode message 1)"
    pre = f"esp_{dirn}"
    kv(f"{pre}_spi", sa["spi"], f"{'client -> server' if dirn == 'out' else 'server -> client'}"
       f" ({sa['src']} -> {sa['dst']}); SPI chosen by the receiver = the {chooser};"
       f" wireshark/esp_sa + xfrm-state.txt")
    kv(f"{pre}_enc_alg", f"{sa['enc']}, {len(sa['ekey']) * 4} bit key", "wireshark/esp_sa; xfrm 'enc "
       + (" ".join(xs[sa['spi']]['enc'][:1]) if xs.get(sa["spi"], {}).get("enc") else "?") + "'")
    xe = xs.get(sa["spi"], {}).get("enc")
    kv(f"{pre}_enc_key", sa["ekey"], "wireshark/esp_sa; == xfrm-state.txt: "
       + ("yes" if xe and xe[1][2:] == sa["ekey"] else "NO/absent"))
    xa = xs.get(sa["spi"], {}).get("auth")
    kv(f"{pre}_auth_alg", sa["auth"] + (f" (xfrm {xa[0]}, truncated to {xa[3]} bits)" if xa else ""),
       "wireshark/esp_sa, xfrm-state.txt")
    kv(f"{pre}_auth_key", sa["akey"], "wireshark/esp_sa; == xfrm-state.txt: "
       + ("yes" if xa and xa[1][2:] == sa["akey"] else "NO/absent"))
    if xs.get(sa["spi"], {}).get("encap"):
        kv(f"{pre}_encap", " ".join(xs[sa["spi"]]["encap"]), "xfrm-state.txt encap (type sport dport)")
    if skeyid_d and "ni2" in qmv and "nr2" in qmv:
        spi_b = bytes.fromhex(sa["spi"][2:])
        need = len(sa["ekey"]) // 2 + len(sa["akey"]) // 2
        km = expand(H, skeyid_d, b"\x03" + spi_b + qmv["ni2"] + qmv["nr2"], need)
        ok = km.hex() == sa["ekey"] + sa["akey"]
        K.append(f"# KEYMAT check: prf(SKEYID_d, 0x03 | SPI | Ni2_b | Nr2_b) expanded (K1|K2.., Kn+1 ="
                 f" prf(SKEYID_d, Kn | 0x03 | SPI | Ni2_b | Nr2_b)) = enc_key | auth_key: {'matches' if ok else 'MISMATCH'}")
        kv(f"{pre}_keymat", km.hex(), "computed (see check above)")
K.append("")
K.append("## every hex dump in charon.log, verbatim, in log order (name[#n] for repeated names)")
K.append("# ('next IV for MID m' is printed twice when charon sends: the IV before and the IV after")
K.append("#  encrypting; HASH_I data = g^xi|g^xr|CKY-I|CKY-R|SAi_b|IDii_b, HASH_R data likewise;")
K.append("#  natd_chunk = CKY-I|CKY-R|IP|port hashed into NAT-D)")
cnt = {}
for nm, data, ln, tm, th in dumps:
    cnt[nm] = cnt.get(nm, 0) + 1
    key = "charon." + re.sub(r"[^A-Za-z0-9_]+", "_", nm).strip("_")
    tot = sum(1 for x in dumps if x[0] == nm)
    if tot > 1:
        key += f"#{cnt[nm]}"
    kv(key, data.hex(), f"charon.log:{ln} {tm} thread {th}: '{nm}' ({len(data)} bytes)")
# charon messages that are not in the capture
cap_bytes = sorted(set(int(re.search(r"\((\d+) bytes\)", l).group(1)) for l in charon
                       if "sending packet" in l or "received packet" in l))
nlog = sum(1 for l in charon if "sending packet" in l or "received packet" in l)
K.append("")
K.append(f"# charon.log records {nlog} sent/received IKE packets; the capture holds {len(msgs)} ISAKMP messages"
         " (the capture stops before the final Quick/ISAKMP DELETE informationals, whose keys/IVs are dumped above)")
pluto = rd(os.path.join(os.path.dirname(SAMPLE), "libreswan-server-pluto-excerpt.log"))
if pluto and NAME.startswith("libreswan"):
    spis = {sa["spi"][2:] for sa in esp_sa}
    sel = []
    blocks = re.split(r"(?m)(?=^.*responding to Main Mode)", pluto)
    for blk in blocks:
        if any(s in blk for s in spis):
            sel = blk.strip().splitlines()
    K.append("")
    K.append("## server side: libreswan-server-pluto-excerpt.log lines for this connection (pluto prints no keys)")
    K += [f"#   {l}" for l in sel]

with open(os.path.join(OUT, f"{NAME}-keys.txt"), "w") as o:
    o.write("\n".join(K) + "\n")

print(f"{NAME}: {len(msgs)} ISAKMP messages ({enc_total} encrypted, {enc_ok} decrypted), "
      f"{esp_total} ESP ({esp_dec} decrypted by tshark, {esp_icv_good} ICV good), "
      f"{len(dumps)} charon dumps, psk verified={psk_ok}")
for mm in msgs:
    if mm["enc"]:
        print(f"  frame {mm['frame']}: {plain_src.get(mm['frame'])}")
