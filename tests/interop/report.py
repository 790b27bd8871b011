#!/usr/bin/env python3
"""Result table for tests/interop/run.sh.

    report.py server OUT     OUT/runs.tsv lists the harness runs of `run.sh --server l2sec`:
                             MODE <TAB> PROFILES <TAB> RUN_DIR <TAB> SERVER_DIR <TAB> ATTEMPT
                             RUN_DIR/summary.json is the harness's summary (summarize.py);
                             SERVER_DIR holds our server.log and esp_sa (the server's key log).
    report.py client OUT     OUT/client-results.tsv, one line per (server, mode) written by
                             `run.sh --client l2sec` (see there for the columns).

Prints the table (profile x mode: pass/fail, connect time, tunnel throughput, ESP decrypt check),
then for every failure the stage that failed and the relevant log lines. Writes OUT/results.json
and OUT/results.md. Exit status 1 if anything failed (or nothing ran), else 0.
"""
import datetime
import json
import os
import re
import shutil
import subprocess
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read_env(path):
    d = {}
    if not os.path.exists(path):
        return d
    for line in open(path, errors="replace"):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        d[k] = v.strip().strip('"')
    return d


def tail(path, n, pattern=None):
    if not os.path.exists(path):
        return [f"(no {os.path.basename(path)})"]
    lines = [ANSI.sub("", l.rstrip("\n")) for l in open(path, errors="replace")]
    if pattern:
        lines = [l for l in lines if re.search(pattern, l, re.I)]
    return lines[-n:]


def esp_decrypt(pcap, keylog):
    """Decode a capture with the server's key log (Wireshark esp_sa lines)."""
    if not shutil.which("tshark"):
        return {"error": "tshark not installed"}
    if not os.path.exists(pcap):
        return {"error": f"no capture {pcap}"}
    recs, ike_recs = [], []
    if os.path.exists(keylog):
        recs = [r.strip() for r in open(keylog) if r.strip()]
    # ISAKMP keys: Wireshark ikev1_decryption_table rows the server writes beside the file.
    if os.path.exists(keylog + ".ikev1"):
        ike_recs = [r.strip() for r in open(keylog + ".ikev1") if r.strip()]
    # Only each frame's protocol stack is read: TCP reassembly of the decrypted iperf3 streams
    # adds nothing and can take tshark minutes (a 90 MB capture: over 6 min, 3 s without).
    args = ["tshark", "-n", "-r", pcap, "-o", "esp.enable_encryption_decode:TRUE",
            "-o", "tcp.desegment_tcp_streams:FALSE"]
    for r in recs:
        args += ["-o", f"uat:esp_sa:{r}"]
    for r in ike_recs:
        args += ["-o", f"uat:ikev1_decryption_table:{r}"]
    try:
        p = subprocess.run(args + ["-T", "fields", "-e", "frame.number", "-e", "frame.protocols",
                                   "-e", "isakmp.flag_e", "-e", "isakmp.hash"],
                           capture_output=True, text=True, timeout=1800)
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}
    rows = [l.split("\t") for l in p.stdout.splitlines() if "\t" in l]
    # Every encrypted IKEv1 message (Main Mode 5/6, Quick Mode, Informational) carries a HASH
    # payload: one that shows it was decrypted.
    ike_enc = [r for r in rows if len(r) > 2 and r[2] in ("1", "True", "true")]
    ike_dec = [r for r in ike_enc if len(r) > 3 and r[3]]
    protos = [r[1] for r in rows]
    esp = [r for r in rows if ":esp" in r[1]]
    malformed = [r for r in rows if "malformed" in r[1]]
    return {
        "keylog_lines": len(recs),
        "ikev1_keylog_lines": len(ike_recs),
        "isakmp_encrypted": len(ike_enc),
        "isakmp_decrypted": len(ike_dec),
        "frames": len(rows),
        "isakmp": sum(":isakmp" in x for x in protos),
        "esp": len(esp),
        "esp_to_l2tp": sum(":l2tp" in r[1] for r in esp),
        "esp_to_ppp_ip": sum(":ppp" in r[1] and r[1].count(":ip") >= 2 for r in esp),
        "esp_not_decoded": [r[0] for r in esp if ":l2tp" not in r[1]][:10],
        "malformed": [f"frame {r[0]}: {r[1]}" for r in malformed][:10],
    }


def parse_ts(line):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z", line)
    if not m:
        return None
    s = m.group(1)
    if "." in s:
        s = s[:s.index(".") + 7]
        fmt = "%Y-%m-%dT%H:%M:%S.%f"
    else:
        fmt = "%Y-%m-%dT%H:%M:%S"
    return datetime.datetime.strptime(s, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()


def server_log_window(path, t0, t1, slack=3.0):
    """Our server's log lines between two (guest clock) epoch times."""
    if not os.path.exists(path) or t0 is None:
        return None
    out = []
    for l in open(path, errors="replace"):
        l = ANSI.sub("", l.rstrip("\n"))
        t = parse_ts(l)
        if t is not None and t0 - slack <= t <= (t1 if t1 else t0 + 120) + slack:
            out.append(l)
    return out


def read_reverse_pings(sdir):
    """SERVER_DIR/reverse-ping.tsv (run.sh's watcher): [(host epoch, address, ok|FAIL, 'n/m')]."""
    path = os.path.join(sdir, "reverse-ping.tsv")
    if not os.path.exists(path):
        return None
    rows = []
    for l in open(path):
        f = l.rstrip("\n").split("\t")
        if len(f) >= 4:
            try:
                rows.append((float(f[0]), f[1], f[2], f[3]))
            except ValueError:
                pass
    return rows


def disconnect_check(log, t_up, t_end):
    """What our server logged for this profile's hang-up: the L2TP StopCCN from the peer, the
    session's end with its reason and address, and the IKE SA delete."""
    lines = server_log_window(log, t_up, t_end, slack=12.0) or []
    # only what follows this profile's PPP coming up (the window's slack reaches back further)
    lines = [l for l in lines if (parse_ts(l) or 0) >= t_up - 1.0]
    stop = next((l for l in lines if "L2TP tunnel closed" in l), None)
    user = next((l for l in lines if "user disconnected" in l), None)
    ike = next((l for l in lines if "IKE SA deleted" in l), None)
    reason = re.search(r"reason=(\w+)", user).group(1) if user and re.search(r"reason=(\w+)", user) else None
    freed = re.search(r"address=Some\(([0-9.]+)\)", user).group(1) if user and "address=Some(" in user else None
    ok = bool(stop and "origin: Peer" in stop and reason == "PeerTerminated" and ike and "reason=Deleted" in ike)
    what = []
    what.append("StopCCN" if stop and "origin: Peer" in stop else "no StopCCN from peer")
    what.append(f"session {reason}" if reason else "no session end logged")
    what.append("IKE delete" if ike and "reason=Deleted" in ike else "no IKE delete")
    return {"clean": ok, "text": ", ".join(what), "freed": freed}


def fmt_num(v):
    return "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))


def server_report(out):
    runs = [l.rstrip("\n").split("\t") for l in open(os.path.join(out, "runs.tsv")) if l.strip()]
    expected = []            # (mode, profile) in order
    results = {}             # (mode, profile) -> record; later attempts override
    run_checks = []
    for mode, profiles, run, sdir, attempt in runs:
        for p in profiles.split():
            if (mode, p) not in expected:
                expected.append((mode, p))
        keylog = os.path.join(sdir, "esp_sa")
        sj = os.path.join(run, "summary.json")
        summ = json.load(open(sj)) if os.path.exists(sj) else {"profiles": []}
        if os.path.exists(os.path.join(run, "bridge.pcap")):
            run_checks.append((mode, attempt, run, esp_decrypt(os.path.join(run, "bridge.pcap"), keylog)))
        for p in summ.get("profiles", []):
            name = p["profile"]
            if name not in profiles.split():
                continue
            pdir = os.path.join(run, "client", "out", name)
            rec = {"mode": mode, "profile": name, "attempt": int(attempt), "run": run, "server_dir": sdir,
                   "ipsec_up": p.get("ipsec_up") == "1", "ppp_up": p.get("ppp_up") == "1",
                   "ping_ok": p.get("ping_ok") == "1", "connect_s": p.get("connect_s"),
                   "ike_s": p.get("ike_mm_qm_s"), "l2tp_ppp_s": p.get("l2tp_ppp_s"),
                   "tunnel_up_mbps": p.get("iperf_tunnel_up_mbps"),
                   "tunnel_down_mbps": p.get("iperf_tunnel_down_mbps"),
                   "ike_proposal": p.get("ike_proposal"), "esp_proposal": p.get("esp_proposal"),
                   "address": p.get("ppp_local")}
            rec["pass"] = rec["ipsec_up"] and rec["ppp_up"] and rec["ping_ok"]
            if not rec["ipsec_up"]:
                rec["stage"] = "IKE/IPsec (Main Mode + Quick Mode)"
            elif not rec["ppp_up"]:
                rec["stage"] = "L2TP/PPP (no ppp0 address)"
            elif not rec["ping_ok"]:
                rec["stage"] = "ping of the PPP peer through the tunnel"
            rec["decrypt"] = esp_decrypt(os.path.join(pdir, "client.pcap"), keylog)
            marks = read_env(os.path.join(pdir, "marks"))
            try:
                t0 = float(marks[f"{name}_start"])
                t1 = float(marks.get(f"{name}_done") or marks.get(f"{name}_ipsec_down") or t0 + 120)
            except (KeyError, ValueError):
                t0 = t1 = None
            rec["window"] = (t0, t1)
            # pings from the server's side to the address it handed out, during this session
            pings = read_reverse_pings(sdir)
            if pings is not None and rec["ppp_up"] and t0 is not None:
                hit = [r for r in pings if t0 - 3 <= r[0] <= t1 + 3 and r[1] == rec["address"]]
                rec["reverse_ping"] = (f"{hit[-1][2]} {hit[-1][3]}" if hit else "none sent")
                rec["reverse_ping_ok"] = bool(hit) and hit[-1][2] == "ok"
            # the hang-up, as the server saw it
            try:
                t_up = float(marks[f"{name}_ppp_up"])
            except (KeyError, ValueError):
                t_up = None
            if rec["ppp_up"] and t_up is not None:
                rec["disconnect"] = disconnect_check(os.path.join(sdir, "server.log"), t_up, t1)
            rec["pass"] = (rec["pass"] and rec.get("reverse_ping_ok", True)
                           and (rec.get("disconnect") or {}).get("clean", True))
            if rec["pass"] is False and "stage" not in rec:
                if not rec.get("reverse_ping_ok", True):
                    rec["stage"] = "ping from the server's side to the client's PPP address"
                else:
                    rec["stage"] = f"clean disconnect ({rec['disconnect']['text']})"
            results[(mode, name)] = rec

    rows, failures = [], []
    for mode, p in expected:
        r = results.get((mode, p))
        if r is None:
            r = {"mode": mode, "profile": p, "pass": False,
                 "stage": "client VM (did not boot, or timed out before this profile: no result.env)"}
            results[(mode, p)] = r
        rows.append(r)
        if not r["pass"]:
            failures.append(r)

    hdr = ("| profile | mode | result | connect s | IKE s | L2TP+PPP s | tunnel up/down Mbit/s "
           "| pings client→server / server→client | disconnect (server log) "
           "| ESP frames decrypted to L2TP (server key log) | malformed | IKE / ESP suite |")
    md = [hdr, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = r.get("decrypt") or {}
        if "error" in d:
            dec, mal = d["error"], "-"
        elif d:
            dec = f"{d['esp_to_l2tp']}/{d['esp']}" + (f" ({d['esp_to_ppp_ip']} PPP/IP)" if d["esp"] else "")
            mal = str(len(d["malformed"])) if d["malformed"] else "none"
        else:
            dec, mal = "-", "-"
        tput = "-"
        if r.get("tunnel_up_mbps") is not None or r.get("tunnel_down_mbps") is not None:
            tput = f"{fmt_num(r.get('tunnel_up_mbps'))}/{fmt_num(r.get('tunnel_down_mbps'))}"
        res = "pass" if r["pass"] else "FAIL"
        if r.get("attempt", 1) > 1:
            res += f" (attempt {r['attempt']})"
        suites = f"{r.get('ike_proposal') or '-'} / {r.get('esp_proposal') or '-'}"
        pings = "-"
        if r.get("ppp_up"):
            pings = f"{'ok' if r.get('ping_ok') else 'FAIL'} / {r.get('reverse_ping', '-')}"
        disc = "-"
        if r.get("disconnect"):
            dd = r["disconnect"]
            disc = ("clean: " if dd["clean"] else "NOT clean: ") + dd["text"]
            if dd.get("freed"):
                disc += f", {dd['freed']} freed"
        md.append(f"| {r['profile']} | {r['mode']} | {res} | {fmt_num(r.get('connect_s'))} | "
                  f"{fmt_num(r.get('ike_s'))} | {fmt_num(r.get('l2tp_ppp_s'))} | {tput} | {pings} | {disc} | "
                  f"{dec} | {mal} | {suites} |")
    md.append("")
    md.append("Decrypt check: ESP decoded with the esp_sa lines l2sec-server wrote to its keylog_file "
              "(per profile: the client VM's client.pcap).")
    for mode, attempt, run, d in run_checks:
        if "error" in d:
            md.append(f"- bridge.pcap {mode} (attempt {attempt}): {d['error']}")
        else:
            md.append(f"- bridge.pcap {mode} (attempt {attempt}, {d['frames']} frames): "
                      f"{d['esp_to_l2tp']}/{d['esp']} ESP frames decoded to L2TP, "
                      f"{len(d['malformed'])} malformed, {d['keylog_lines']} key-log lines; "
                      f"{d['isakmp_decrypted']}/{d['isakmp_encrypted']} encrypted ISAKMP messages "
                      f"decrypted ({d['ikev1_keylog_lines']} ikev1_decryption_table rows)")
        for m in d.get("malformed", []):
            md.append(f"  - malformed {m}")
        if d.get("esp_not_decoded"):
            md.append(f"  - ESP frames not decoded: {', '.join(d['esp_not_decoded'])}")
    md.append("- IKE (ISAKMP) decryption: with the ikev1_decryption_table rows l2sec-server writes to "
              "keylog_file.ikev1; an encrypted IKEv1 message counts as decrypted when its HASH payload "
              "decodes.")

    # what our server said, per mode: disconnect reasons and warnings
    seen = set()
    for mode, profiles, run, sdir, attempt in runs:
        log = os.path.join(sdir, "server.log")
        if log in seen or not os.path.exists(log):
            continue
        seen.add(log)
        lines = [ANSI.sub("", l.rstrip("\n")) for l in open(log, errors="replace")]
        reasons = {}
        for l in lines:
            m = re.search(r"user disconnected.*reason=(\S+)", l)
            if m:
                reasons[m.group(1)] = reasons.get(m.group(1), 0) + 1
        warns = [l for l in lines if re.search(r"\b(WARN|ERROR)\b", l)]
        md.append(f"- server.log {mode} (attempt {attempt}): {len(lines)} lines, disconnect reasons "
                  f"{reasons or '-'}, {len(warns)} WARN/ERROR lines")
        for l in warns[:8]:
            md.append(f"    {l}")

    md += compare_section(out, results)

    if failures:
        md += ["", "## Failures", ""]
    for r in failures:
        md.append(f"### {r['profile']} / {r['mode']}: failed at {r['stage']}")
        run = r.get("run")
        if not run:
            md.append("")
            continue
        pdir = os.path.join(run, "client", "out", r["profile"])
        md.append(f"run dir: {pdir}")
        blocks = [
            ("client ipsec up", os.path.join(pdir, "ipsec-up.log"), 12, None),
            ("client charon.log (errors, notifies, proposals)", os.path.join(pdir, "charon.log"), 15,
             r"error|fail|NO_PROPOSAL|INVALID|notify|proposal|retransmit|giving up|deleting|received"),
            ("client xl2tpd.log", os.path.join(pdir, "xl2tpd.log"), 12, None),
            ("client pppd.log", os.path.join(pdir, "pppd.log"), 15, None),
            ("client ping", os.path.join(pdir, "ping.txt"), 4, None),
        ]
        if r.get("stage", "").startswith("IKE"):
            blocks = [b for b in blocks if "pppd" not in b[0] and "ping" not in b[0]]
        for title, path, n, pat in blocks:
            md.append(f"-- {title}:")
            md += [f"    {l}" for l in tail(path, n, pat)]
        slog = os.path.join(r["server_dir"], "server.log")
        win = server_log_window(slog, *r.get("window", (None, None)))
        if win:
            md.append("-- l2sec-server server.log (this profile's time window):")
            md += [f"    {l}" for l in win[-25:]]
        else:
            md.append("-- l2sec-server server.log (WARN/ERROR, last lines):")
            md += [f"    {l}" for l in tail(slog, 15, r"WARN|ERROR|refus|fail|reject")]
        md.append("")

    text = "\n".join(md)
    print(text)
    open(os.path.join(out, "results.md"), "w").write(text + "\n")
    json.dump([{k: v for k, v in r.items() if k != "window"} for r in rows],
              open(os.path.join(out, "results.json"), "w"), indent=2)
    return 0 if rows and not failures else 1


def compare_section(out, results):
    """run.sh --compare: the same client VM profiles against the reference server VM
    (OUT/compare.tsv: MODE PROFILES RUN_DIR, each RUN_DIR an e2e.sh run with summary.json)."""
    path = os.path.join(out, "compare.tsv")
    if not os.path.exists(path):
        return []
    md = ["", "## l2sec-server vs the reference server (strongSwan 5.9 + xl2tpd + pppd VM), same run", "",
          "| profile | mode | l2sec: result | reference: result | l2sec connect s | reference connect s "
          "| l2sec tunnel up/down Mbit/s | reference tunnel up/down Mbit/s |",
          "|---|---|---|---|---|---|---|---|"]
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 3:
            continue
        mode, profiles, run = f[0], f[1].split(), f[2]
        sj = os.path.join(run, "summary.json")
        summ = json.load(open(sj)) if os.path.exists(sj) else {"profiles": []}
        ref = {p["profile"]: p for p in summ.get("profiles", [])}
        for name in profiles:
            ours = results.get((mode, name)) or {}
            theirs = ref.get(name)
            t_ok = bool(theirs) and theirs.get("ipsec_up") == "1" and theirs.get("ppp_up") == "1" \
                and theirs.get("ping_ok") == "1"
            def tp(up, down):
                return "-" if up is None and down is None else f"{fmt_num(up)}/{fmt_num(down)}"
            md.append(
                f"| {name} | {mode} | {'pass' if ours.get('pass') else 'FAIL'} | "
                f"{('pass' if t_ok else 'FAIL') if theirs else 'no result'} | "
                f"{fmt_num(ours.get('connect_s'))} | {fmt_num((theirs or {}).get('connect_s'))} | "
                f"{tp(ours.get('tunnel_up_mbps'), ours.get('tunnel_down_mbps'))} | "
                f"{tp((theirs or {}).get('iperf_tunnel_up_mbps'), (theirs or {}).get('iperf_tunnel_down_mbps'))} |")
        md.append(f"- reference {mode}: {run}")
    md.append("- Connect time: the client VM's `ipsec up` to ppp0 with an address (the first profile "
              "of a boot includes charon's start). Throughput: iperf3 5 s each way through the tunnel, "
              "first profile of each mode. Both servers under the same TCG emulation on this machine.")
    return md


def client_report(out):
    """client-results.tsv: SERVER MODE PASS STAGE CONNECT_S UP DOWN PING DIR"""
    path = os.path.join(out, "client-results.tsv")
    rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()] if os.path.exists(path) else []
    md = ["| server | mode | result | connect s | tunnel up/down Mbit/s | ping | PPP auth | IKE suite | stage failed |",
          "|---|---|---|---|---|---|---|---|---|"]
    failures = []
    for row in rows:
        server, mode, ok, stage, cs, up, down, ping, d = row[:9]
        auth, suite = (row[9:11] + ["-", "-"])[:2]
        tput = f"{up}/{down}" if (up != "-" or down != "-") else "-"
        md.append(f"| {server} | {mode} | {'pass' if ok == '1' else 'FAIL'} | {cs} | {tput} | {ping} | {auth} | "
                  f"{suite} | {stage if ok != '1' else ''} |")
        if ok != "1":
            failures.append((server, mode, stage, d))
    md.append("")
    md.append("- Decrypt check: not done for --client (l2sec-client writes no ESP key log).")
    if failures:
        md += ["", "## Failures", ""]
    for server, mode, stage, d in failures:
        md.append(f"### {server} / {mode}: failed at {stage}")
        md.append(f"dir: {d}")
        md.append("-- l2sec-client log:")
        md += [f"    {l}" for l in tail(os.path.join(d, "client.log"), 25)]
        sout = os.path.join(d, "..", "server-vm", "out")
        for f, pat in (("charon.log", r"error|fail|NO_PROPOSAL|INVALID|notify|proposal|received|no matching|expired"),
                       ("pluto.log", r"error|fail|NO_PROPOSAL|INVALID|not supported|expired|refus|STATE_"),
                       ("xl2tpd.log", None), ("pppd.log", None)):
            p = os.path.join(sout, f)
            if os.path.exists(p):
                md.append(f"-- server VM {f}:")
                md += [f"    {l}" for l in tail(p, 15, pat)]
        md.append("")
    text = "\n".join(md)
    print(text)
    open(os.path.join(out, "results.md"), "w").write(text + "\n")
    return 0 if rows and not failures else 1


if __name__ == "__main__":
    kind, out = sys.argv[1], sys.argv[2]
    sys.exit(server_report(out) if kind == "server" else client_report(out))
