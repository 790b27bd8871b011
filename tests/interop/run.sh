#!/bin/bash
# tests/interop/run.sh -- interop of l2sec with real L2TP/IPsec stacks (strongSwan/Libreswan + xl2tpd
# + pppd in Debian VMs, from the harness in ../shared/interop). See tests/interop/README.md.
#
#   run.sh [--server l2sec] [--profiles "windows10 natt ..."] [--modes "raw natt"] [--smoke] [--keep]
#   run.sh --client l2sec [--servers "strongswan libreswan"] [--modes "raw natt"] [--keep]
#
# --server l2sec (default): l2sec-server runs in the namespace l2tpnet on 10.77.0.1; the harness's
#     reference client VM (strongSwan + xl2tpd + pppd) connects once per profile and mode.
#     Modes: raw = plain ESP (IP protocol 50), natt = ESP in UDP 4500 (FORCEENCAPS=1).
# --client l2sec: a reference server VM (strongSwan or Libreswan + xl2tpd + pppd, 10.77.0.10) and
#     l2sec-client in the namespace; raw = client on the bridge, natt = client in a second namespace
#     behind an nftables masquerade.
# --smoke: windows10 in raw mode and natt in natt mode (what CI runs).
# --compare: (with --server l2sec) afterwards the same profiles and modes against the reference
#     server VM (strongSwan + xl2tpd + pppd, the harness's e2e.sh), and a table comparing connect
#     time and tunnel throughput of both servers from the same run.
# --keep: leave the namespace (and, with --client, the NAT namespace) up at the end.
# --no-build: use target/release/l2sec-{server,client} as they are (e.g. while the workspace is
#     mid-edit and does not build); default: cargo build --release --locked first.
# Exit: 0 all passed, 1 something failed, 2 usage error or harness missing.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
INTEROP_DIR=${INTEROP_DIR:-$REPO/../shared/interop}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
say() { printf '[run.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

SIDE=server PROFILES_ARG="" MODES="raw natt" SMOKE=0 KEEP=0 BUILD=1 SERVERS="strongswan libreswan" COMPARE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --profiles) PROFILES_ARG=${2:?--profiles needs a list}; shift 2 ;;
        --modes) MODES=${2:?--modes needs a list}; shift 2 ;;
        --servers) SERVERS=${2:?--servers needs a list}; shift 2 ;;
        --server) [ "${2:-}" = l2sec ] || { echo "--server takes 'l2sec' (the server under test)" >&2; exit 2; }
                  SIDE=server; shift 2 ;;
        --client) [ "${2:-}" = l2sec ] || { echo "--client takes 'l2sec' (the client under test)" >&2; exit 2; }
                  SIDE=client; shift 2 ;;
        --smoke) SMOKE=1; shift ;;
        --compare) COMPARE=1; shift ;;
        --keep) KEEP=1; shift ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for m in $MODES; do
    case "$m" in raw|natt) ;; *) echo "unknown mode '$m' (raw, natt)" >&2; exit 2 ;; esac
done
[ "$COMPARE" = 1 ] && [ "$SIDE" != server ] && { echo "--compare is for --server l2sec" >&2; exit 2; }

if [ ! -f "$INTEROP_DIR/client-vm.sh" ] || [ ! -f "$INTEROP_DIR/lib.sh" ]; then
    cat >&2 <<EOF
run.sh: the interop VM harness is not at $INTEROP_DIR.
It is the project's shared harness (README.md, setup-host.sh, build-image.sh, net.sh, client-vm.sh,
e2e.sh, role-vm.sh, summarize.py, profiles/, guest/), kept next to the repository in the shared
workspace: <repo>/../shared/interop (on the project's machines /work/shared/interop).
Copy or mount it there, or point INTEROP_DIR=/path/to/interop at it.
EOF
    exit 2
fi
INTEROP_DIR=$(cd "$INTEROP_DIR" && pwd)
[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root (namespaces, taps, qemu, raw ESP socket)" >&2; exit 2; }

export INTEROP_DIR
# shellcheck source=/dev/null
. "$INTEROP_DIR/lib.sh"       # INTEROP_CACHE, INTEROP_NS, INTEROP_BR, INTEROP_NS_IP, credentials, ...
export INTEROP_CACHE

if [ "$SMOKE" = 1 ]; then
    [ "$SIDE" = server ] || { echo "--smoke is for --server l2sec" >&2; exit 2; }
    PLAN=("raw:windows10" "natt:natt")
else
    if [ -z "$PROFILES_ARG" ]; then
        PROFILES_ARG=$(cd "$INTEROP_DIR/profiles" && ls -- *.env | sed 's/\.env$//' | tr '\n' ' ')
    fi
    for p in $PROFILES_ARG; do
        [ -f "$INTEROP_DIR/profiles/$p.env" ] || { echo "no profile $p in $INTEROP_DIR/profiles" >&2; exit 2; }
    done
    PLAN=()
    for m in $MODES; do PLAN+=("$m:$PROFILES_ARG"); done
fi

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${L2SEC_INTEROP_OUT:-$INTEROP_CACHE/runs/$STAMP-l2sec-$SIDE}
mkdir -p "$OUT"
: > "$OUT/runs.tsv"
say "results in $OUT"

# ---------------------------------------------------------------------------------------------
# cleanup: our server / client, the VMs we may have started, the NAT namespace, the namespace
SERVER_PID="" CLIENT_PID="" WATCH_PID="" FG_PID="" CLIENT_NS=l2tpcli CLEANED=0 CUR_RUN=""
stop_pid() {   # stop_pid PID: TERM, up to 10 s, then KILL
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { say "pid $pid ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    wait "$pid" 2>/dev/null || true
}
# fg_run CMD...: run CMD in the background and wait, so that INT/TERM reach our trap at once
fg_run() { local rc=0; "$@" & FG_PID=$!; wait "$FG_PID" || rc=$?; FG_PID=""; return "$rc"; }
cleanup() {
    [ "$CLEANED" = 1 ] && return 0
    CLEANED=1
    set +e
    stop_pid "$FG_PID"; FG_PID=""
    stop_pid "$CLIENT_PID"; CLIENT_PID=""
    stop_pid "$SERVER_PID"; SERVER_PID=""
    stop_pid "$WATCH_PID"; WATCH_PID=""
    "$INTEROP_DIR/vm.sh" stop client >/dev/null 2>&1
    "$INTEROP_DIR/vm.sh" stop e2e-client >/dev/null 2>&1
    "$INTEROP_DIR/vm.sh" stop e2e-server >/dev/null 2>&1
    "$INTEROP_DIR/vm.sh" stop l2sec-srv >/dev/null 2>&1
    if [ -n "${CAP_PID:-}" ]; then stop_pid "$CAP_PID"; CAP_PID=""; fi
    # the iperf3 daemon client-vm.sh starts in the namespace (its own trap normally stops it)
    if [ -n "$CUR_RUN" ] && [ -s "$CUR_RUN/ns-iperf3.pid" ]; then
        kill "$(cat "$CUR_RUN/ns-iperf3.pid")" 2>/dev/null; rm -f "$CUR_RUN/ns-iperf3.pid"
    fi
    if [ "$KEEP" = 1 ]; then
        say "--keep: namespace $INTEROP_NS left up (delete: $INTEROP_DIR/net.sh down)"
    else
        if ip netns list | grep -qw "^$CLIENT_NS"; then ip netns del "$CLIENT_NS"; fi
        "$INTEROP_DIR/net.sh" down
    fi
}
on_signal() { say "interrupted"; cleanup; exit 130; }
trap cleanup EXIT
trap on_signal INT TERM

# The namespace: one left over with nothing running in it is reused; one in use is another run.
if ip netns list | grep -qw "^$INTEROP_NS"; then
    if [ -n "$(ip netns pids "$INTEROP_NS" 2>/dev/null)" ]; then
        say "namespace $INTEROP_NS is in use by pids $(ip netns pids "$INTEROP_NS" | tr '\n' ' ')-- another interop run? not touching it"
        CLEANED=1; exit 1
    fi
    say "reusing the idle namespace $INTEROP_NS left by an earlier run"
fi

# ---------------------------------------------------------------------------------------------
# L2SEC_BIN_DIR: take the binaries from there (scripts/test passes its debug build) instead of
# target/release; implies --no-build.
BIN_DIR=${L2SEC_BIN_DIR:-$REPO/target/release}
[ -n "${L2SEC_BIN_DIR:-}" ] && BUILD=0
SERVER_BIN=$BIN_DIR/l2sec-server
CLIENT_BIN=$BIN_DIR/l2sec-client
if [ "$BUILD" = 1 ]; then
    say "building l2sec (release)"
    fg_run bash -c 'cd "$1" && cargo build --release --locked -p l2sec-server -p l2sec-client' _ "$REPO" >"$OUT/cargo-build.log" 2>&1 \
        || { tail -30 "$OUT/cargo-build.log" >&2; say "cargo build failed (--no-build uses the binaries already in target/release)"; exit 1; }
else
    for b in "$SERVER_BIN" "$CLIENT_BIN"; do [ -x "$b" ] || { say "--no-build: $b missing"; exit 1; }; done
    say "--no-build: using $(ls -l --time-style=+%F\ %T "$SERVER_BIN" | awk '{print $6, $7}') binaries in $BIN_DIR"
fi

say "host setup and images (cached in $INTEROP_CACHE)"
fg_run "$INTEROP_DIR/setup-host.sh" >"$OUT/setup-host.log" 2>&1 || { tail -20 "$OUT/setup-host.log" >&2; exit 1; }
fg_run "$INTEROP_DIR/build-image.sh" swan >"$OUT/build-image.log" 2>&1 || { tail -20 "$OUT/build-image.log" >&2; exit 1; }
if [ "$SIDE" = client ] && [[ " $SERVERS " == *" libreswan "* ]]; then
    fg_run "$INTEROP_DIR/build-image.sh" lsw >>"$OUT/build-image.log" 2>&1 || { tail -20 "$OUT/build-image.log" >&2; exit 1; }
fi
"$INTEROP_DIR/net.sh" up

# ---------------------------------------------------------------------------------------------
# --server l2sec
start_server() {   # start_server DIR: config in DIR, wait for l2sec0 to carry 172.16.1.1
    local d=$1
    mkdir -p "$d/state"
    cat > "$d/server.toml" <<EOF
[server]
listen = "$INTEROP_NS_IP"
state_dir = "$d/state"

[ipsec]
psk = "$INTEROP_PSK"
keylog_file = "$d/esp_sa"

[ppp]
auth = ["mschapv2"]

[pool]
range = "172.16.1.2-172.16.1.100"
local = "172.16.1.1"

[users]
file = "$d/users.toml"

[policy]
rules = ["allow pool -> intranet", "allow pool -> lns"]
EOF
    printf '[[user]]\nname = "%s"\npassword = "%s"\n' "$INTEROP_USER" "$INTEROP_PASS" > "$d/users.toml"
    chmod 600 "$d/users.toml" "$d/server.toml"
    ip netns exec "$INTEROP_NS" env RUST_LOG=debug "$SERVER_BIN" run --config "$d/server.toml" \
        > "$d/server.log" 2>&1 &
    SERVER_PID=$!
    local t0=$SECONDS
    until ip -n "$INTEROP_NS" -4 addr show dev l2sec0 2>/dev/null | grep -q 'inet 172\.16\.1\.1/'; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            say "l2sec-server exited at start-up:"; tail -20 "$d/server.log" >&2; SERVER_PID=""; return 1
        fi
        (( SECONDS - t0 < 20 )) || { say "l2sec-server: no l2sec0 with 172.16.1.1 after 20 s"; tail -20 "$d/server.log" >&2; return 1; }
        sleep 0.2
    done
    say "l2sec-server up (pid $SERVER_PID), log $d/server.log"
}

# Pings from the server's side: every address the server hands out is pinged from the namespace
# (through l2sec-server's TUN and the tunnel to the client VM's ppp0) as soon as the server logs
# "user connected", while the client VM pings the other way. One line per session in
# DIR/reverse-ping.tsv: host epoch, address, ok|FAIL, "N/M" replies. Ends with the server.
reverse_ping_watch() {   # reverse_ping_watch DIR
    local d=$1
    : > "$d/reverse-ping.tsv"
    (
        seen=0
        while kill -0 "$SERVER_PID" 2>/dev/null; do
            mapfile -t addrs < <(sed -n 's/.*user connected .* address=\([0-9.]*\) .*/\1/p' "$d/server.log" 2>/dev/null)
            for ((i = seen; i < ${#addrs[@]}; i++)); do
                # pppd configures ppp0 a moment after IPCP opens on our side (FINDINGS.md 10)
                sleep 0.3
                a=${addrs[$i]} t=$(date +%s.%N)
                if ip netns exec "$INTEROP_NS" ping -n -c 3 -i 0.2 -W 1 "$a" > "$d/reverse-ping-$i.txt" 2>&1; then r=ok; else r=FAIL; fi
                got=$(sed -n 's/^ *\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\2\/\1/p' "$d/reverse-ping-$i.txt")
                printf '%s\t%s\t%s\t%s\n' "$t" "$a" "$r" "${got:-0/3}" >> "$d/reverse-ping.tsv"
            done
            seen=${#addrs[@]}
            sleep 0.1
        done
    ) &
    WATCH_PID=$!
}

missing_profiles() {   # missing_profiles RUN PROFILES: those without a result.env
    local run=$1 p miss=""
    for p in $2; do [ -s "$run/client/out/$p/result.env" ] || miss="$miss $p"; done
    echo "${miss# }"
}

vm_booted() {   # did the client VM get as far as running its job?
    grep -q 'INTEROP: run.sh start' "$1/client.console.log" 2>/dev/null \
        || grep -q 'INTEROP: run.sh start' "$INTEROP_CACHE/vms/client.console.log" 2>/dev/null
}

run_server_side() {
    local entry mode profiles attempt run sdir rc miss
    for entry in "${PLAN[@]}"; do
        mode=${entry%%:*} profiles=${entry#*:}
        local todo=$profiles
        for attempt in 1 2; do
            run=$INTEROP_CACHE/runs/$(date +%Y%m%d-%H%M%S)-client-$mode
            [ "$attempt" = 1 ] || run="$run-retry"
            sdir=$OUT/server-$mode-$attempt
            start_server "$sdir" || return 1
            reverse_ping_watch "$sdir"
            "$INTEROP_DIR/vm.sh" stop client >/dev/null 2>&1 || true
            say "mode $mode (attempt $attempt): client VM with profiles: $todo"
            rc=0
            CUR_RUN=$run
            # the bridge capture covers the whole run (teardown included), not just the first 2000 packets
            fg_run env RUN_DIR="$run" SERVER_IP="$INTEROP_NS_IP" PROFILES="$todo" NS_IPERF=1 \
                FORCEENCAPS="$([ "$mode" = natt ] && echo 1 || echo 0)" \
                CAPTURE_PACKETS="${CAPTURE_PACKETS:-100000}" \
                "$INTEROP_DIR/client-vm.sh" > "$sdir/client-vm.out" 2>&1 || rc=$?
            stop_pid "$SERVER_PID"; SERVER_PID=""
            stop_pid "$WATCH_PID"; WATCH_PID=""
            cp "$sdir/server.log" "$run/l2sec-server.log" 2>/dev/null || true
            printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "$todo" "$run" "$sdir" "$attempt" >> "$OUT/runs.tsv"
            say "mode $mode (attempt $attempt): client-vm.sh exit $rc, run dir $run"
            miss=$(missing_profiles "$run" "$todo")
            [ -z "$miss" ] && break
            if vm_booted "$run"; then
                say "profiles without a result ($miss) although the VM booted: not retried (see $run/client/out/run.log)"
                break
            fi
            [ "$attempt" = 1 ] || { say "client VM failed to boot twice"; break; }
            say "client VM did not boot (no 'run.sh start' on its console); retrying once: $miss"
            tail -5 "$run/client.console.log" 2>/dev/null | sed 's/^/    console: /' >&2 || true
            todo=$miss
        done
    done
}

# --compare: the reference server VM (strongSwan 5.9 + xl2tpd + pppd; Libreswan 4.10 has no
# modp1024, which windows10/windows-legacy/android need) with the same client VM, profiles and modes.
# One line per mode in OUT/compare.tsv: MODE PROFILES RUN_DIR.
run_reference_side() {
    local entry mode profiles run rc
    : > "$OUT/compare.tsv"
    for entry in "${PLAN[@]}"; do
        mode=${entry%%:*} profiles=${entry#*:}
        run=$INTEROP_CACHE/runs/$(date +%Y%m%d-%H%M%S)-reference-$mode
        say "mode $mode: reference server VM (strongSwan + xl2tpd) with profiles: $profiles"
        rc=0
        CUR_RUN=$run
        fg_run env RUN_DIR="$run" SERVER_ROLE=server-strongswan PROFILES="$profiles" \
            FORCEENCAPS="$([ "$mode" = natt ] && echo 1 || echo 0)" \
            CAPTURE_PACKETS="${CAPTURE_PACKETS:-100000}" \
            "$INTEROP_DIR/e2e.sh" > "$OUT/reference-$mode.out" 2>&1 || rc=$?
        printf '%s\t%s\t%s\n' "$mode" "$profiles" "$run" >> "$OUT/compare.tsv"
        say "mode $mode: reference e2e.sh exit $rc, run dir $run"
    done
}

# ---------------------------------------------------------------------------------------------
# --client l2sec: reference server VM at $INTEROP_SERVER_IP, l2sec-client in a namespace
setup_client_nat() {   # namespace l2tpcli (10.78.0.2) behind a masquerade in l2tpnet (-> 10.77.0.1)
    ip netns list | grep -qw "^$CLIENT_NS" && ip netns del "$CLIENT_NS"
    ip netns add "$CLIENT_NS"
    ip -n "$CLIENT_NS" link set lo up
    ip link add vcli0 netns "$CLIENT_NS" type veth peer name vcli1 netns "$INTEROP_NS"
    ip -n "$CLIENT_NS" addr add 10.78.0.2/24 dev vcli0
    ip -n "$CLIENT_NS" link set vcli0 up
    ip -n "$CLIENT_NS" route add default via 10.78.0.1
    ip -n "$INTEROP_NS" addr add 10.78.0.1/24 dev vcli1
    ip -n "$INTEROP_NS" link set vcli1 up
    ip netns exec "$INTEROP_NS" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$INTEROP_NS" nft -f - <<EOF
table ip l2sec_interop_nat {
    chain post { type nat hook postrouting priority 100; ip saddr 10.78.0.0/24 oifname "$INTEROP_BR" masquerade; }
}
EOF
}

client_one() {   # client_one SERVER MODE DIR: connect, ping, iperf, disconnect; appends a result line
    local server=$1 mode=$2 d=$3 ns=$INTEROP_NS stage="" ok=0 cs="-" up="-" down="-" ping="-"
    mkdir -p "$d"
    [ "$mode" = natt ] && ns=$CLIENT_NS
    local t0; t0=$(date +%s.%N)
    ip netns exec "$ns" env RUST_LOG=debug L2SEC_PSK="$INTEROP_PSK" L2SEC_PASSWORD="$INTEROP_PASS" \
        "$CLIENT_BIN" connect --server "$INTEROP_SERVER_IP" --user "$INTEROP_USER" --route 172.16.1.0/24 \
        --tun l2sec-c0 --no-reconnect --pid-file "$d/client.pid" > "$d/client.log" 2>&1 &
    CLIENT_PID=$!
    local t=$SECONDS
    while ! grep -q 'address assigned' "$d/client.log"; do
        if ! kill -0 "$CLIENT_PID" 2>/dev/null; then break; fi
        (( SECONDS - t < 90 )) || break
        sleep 0.2
    done
    if grep -q 'address assigned' "$d/client.log"; then
        cs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
        # inner traffic on the client's TUN (headers only), to see what ping/iperf3 got back
        ip netns exec "$ns" tcpdump -i l2sec-c0 -s 128 -U -w "$d/tun.pcap" > "$d/tun-tcpdump.log" 2>&1 &
        local tun_cap=$!
        sleep 1
        if ip netns exec "$ns" ping -c 5 -i 0.2 -W 2 172.16.1.1 > "$d/ping.txt" 2>&1; then ping=ok; else ping=FAIL; fi
        # the VM's iperf3 -s answers a test started right after the last one with a RST (it is not
        # listening again yet; iperf3 -J exits 0 all the same): pause, and retry once on "error"
        local dir try
        for dir in up down; do
            local rflag=""; [ "$dir" = down ] && rflag=-R
            for try in 1 2; do
                sleep 2
                ip netns exec "$ns" iperf3 -c 172.16.1.1 -t 5 $rflag -J > "$d/iperf-$dir.json" 2>&1 || true
                grep -q '"error"' "$d/iperf-$dir.json" || break
            done
        done
        up=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e6,1))' "$d/iperf-up.json" 2>/dev/null || echo -)
        down=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e6,1))' "$d/iperf-down.json" 2>/dev/null || echo -)
        stop_pid "$tun_cap"
        "$CLIENT_BIN" disconnect --pid-file "$d/client.pid" >/dev/null 2>&1 || true
        local crc=0; t=$SECONDS
        while kill -0 "$CLIENT_PID" 2>/dev/null && (( SECONDS - t < 15 )); do sleep 0.2; done
        if kill -0 "$CLIENT_PID" 2>/dev/null; then stage="disconnect (client still running 15 s after SIGTERM)"; fi
        wait "$CLIENT_PID" 2>/dev/null || crc=$?
        CLIENT_PID=""
        if [ -n "$stage" ]; then :
        elif [ "$ping" != ok ]; then stage="ping of the PPP peer through the tunnel"
        elif [ "$crc" != 0 ]; then stage="disconnect (client exit $crc)"
        else ok=1; fi
    else
        stop_pid "$CLIENT_PID"; CLIENT_PID=""
        if grep -q 'L2TP tunnel and session up' "$d/client.log"; then stage="PPP (LCP/MS-CHAPv2/IPCP)"
        elif grep -q 'IPsec SA up' "$d/client.log"; then stage="L2TP"
        elif grep -q 'IKE SA up' "$d/client.log"; then stage="Quick Mode"
        else stage="Main Mode"; fi
    fi
    local auth suite
    auth=$(sed -n 's/.*authenticated method="\([^"]*\)".*/\1/p' "$d/client.log" | tail -1)
    suite=$(sed -n 's/.*IKE SA up suite=Some(Phase1Suite { cipher: \([A-Za-z0-9]*\), hash: \([A-Za-z0-9]*\), group: \([A-Za-z0-9]*\) }) nat=\([a-z]*\).*/\1-\2-\3 nat=\4/p' "$d/client.log" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$mode" "$ok" "${stage:--}" "$cs" "$up" "$down" "$ping" "$d" \
        "${auth:--}" "${suite:--}" >> "$OUT/client-results.tsv"
    say "l2sec-client vs $server ($mode): $([ "$ok" = 1 ] && echo pass || echo "FAIL at $stage")"
}

run_client_side() {
    : > "$OUT/client-results.tsv"
    if [[ " $MODES " == *" natt "* ]]; then setup_client_nat; fi
    local server role variant run attempt booted
    for server in $SERVERS; do
        case "$server" in
            strongswan) role=server-strongswan variant=swan ;;
            libreswan) role=server-libreswan variant=lsw ;;
            *) say "unknown server $server (strongswan, libreswan)"; return 1 ;;
        esac
        run=$OUT/client/$server
        booted=0
        for attempt in 1 2; do
            mkdir -p "$run"
            "$INTEROP_DIR/vm.sh" stop l2sec-srv >/dev/null 2>&1 || true
            say "$server server VM (attempt $attempt)"
            SERVER_IP=$INTEROP_SERVER_IP "$INTEROP_DIR/role-vm.sh" l2sec-srv "$variant" "$role" \
                "$INTEROP_SERVER_IP/24" "$run" SERVER_TIMEOUT=1200 >"$run/role-vm.out" 2>&1 || true
            local t0=$SECONDS
            until [ -e "$run/l2sec-srv/out/ready" ]; do
                (( SECONDS - t0 < 300 )) || break
                "$INTEROP_DIR/vm.sh" wait l2sec-srv 0 >/dev/null 2>&1 && break   # powered off early
                sleep 0.5
            done
            if [ -e "$run/l2sec-srv/out/ready" ]; then booted=1; say "$server ready after $((SECONDS - t0)) s"; break; fi
            say "$server server VM not ready (attempt $attempt); console tail:"
            tail -5 "$INTEROP_CACHE/vms/l2sec-srv.console.log" 2>/dev/null | sed 's/^/    /' >&2 || true
        done
        if [ "$booted" = 1 ]; then
            ip netns exec "$INTEROP_NS" tcpdump -i "$INTEROP_BR" -s 0 -U -c 4000 -w "$run/bridge.pcap" \
                "host $INTEROP_SERVER_IP and (udp port 500 or udp port 4500 or udp port 1701 or esp)" \
                > "$run/tcpdump.log" 2>&1 &
            CAP_PID=$!
            for m in $MODES; do client_one "$server" "$m" "$run/$m"; sleep 2; done
            stop_pid "$CAP_PID"; CAP_PID=""
            touch "$run/l2sec-srv/stop"
            "$INTEROP_DIR/vm.sh" wait l2sec-srv 120 >/dev/null 2>&1 || "$INTEROP_DIR/vm.sh" stop l2sec-srv >/dev/null 2>&1 || true
        else
            for m in $MODES; do
                printf '%s\t%s\t0\t%s\t-\t-\t-\t-\t%s\t-\t-\n' "$server" "$m" "server VM boot (twice)" "$run/$m" >> "$OUT/client-results.tsv"
            done
            "$INTEROP_DIR/vm.sh" stop l2sec-srv >/dev/null 2>&1 || true
        fi
        cp "$INTEROP_CACHE/vms/l2sec-srv.console.log" "$run/" 2>/dev/null || true
        ln -sfn l2sec-srv "$run/server-vm"
    done
}

rc=0
if [ "$SIDE" = server ]; then
    run_server_side || rc=1
    if [ "$COMPARE" = 1 ]; then run_reference_side || rc=1; fi
    cleanup
    echo
    echo "== l2sec-server vs reference clients ($(basename "$OUT"))"
    python3 "$HERE/report.py" server "$OUT" || rc=1
else
    run_client_side || rc=1
    cleanup
    echo
    echo "== l2sec-client vs reference servers ($(basename "$OUT"))"
    python3 "$HERE/report.py" client "$OUT" || rc=1
fi
echo "results: $OUT/results.md"
exit "$rc"
