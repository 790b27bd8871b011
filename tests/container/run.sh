#!/usr/bin/env bash
# The l2sec-server container image and systemd unit, tested on this machine (issue 9):
#
#   1. packaging/l2sec-server.service: `systemd-analyze verify` and the `security` score, the
#      server started under the unit's capability bounding set and no-new-privileges, and (with
#      step 3) every system call the server makes checked against the unit's SystemCallFilter=.
#   2. The image: a Debian bookworm base made with mmdebstrap from the machine's apt sources
#      (cached in $L2SEC_CONTAINER_CACHE, default ~/.cache/l2sec-container) and imported as
#      debian:bookworm-slim (the Containerfile's default BASE_IMAGE; no registry is reachable),
#      then `podman build` with the workspace's l2sec-server (L2SEC_BIN_DIR, default target/debug,
#      debug info stripped on the way into the build context).
#   3. The server container runs with only --cap-add NET_ADMIN --cap-add NET_RAW
#      --device /dev/net/tun on a podman network of its own, configured by environment. Two
#      l2sec-clients in network namespaces attached to that network connect at once: one with
#      plain ESP, one behind an nftables masquerade (NAT-T). Each pings the server's PPP address
#      and moves TCP and UDP through the container to a LAN namespace; `l2sec-server status` in
#      the container lists both, `l2sec-server reload` keeps both; the container's health
#      check passes, and fails while the server is stopped (SIGSTOP: a wedged server); then
#      `podman stop` (SIGTERM): the server must exit 0 by itself, and the clients and the server
#      log are checked for a clean hang-up (StopCCN, IKE Delete): both clients must be told.
#   4. The unit run by systemd 252 (PID 1 of a test container on the same network): started with
#      exactly the unit's capabilities, no_new_privs and seccomp; a client connects and pings
#      through it; `l2sec-server status` finds the control socket in /run/l2sec (0700, socket
#      0600), `systemctl reload` (SIGHUP) keeps the session; `systemctl stop` ends it cleanly
#      with its route removed.
#   5. State in a volume: with no PSK and no users the server generates both into the volume
#      (mode 0600) from a mounted TOML file, and a restart keeps them; this container runs with
#      --cap-drop ALL plus the server's three capabilities, --read-only and JSON logs.
#
# Podman runs as root with runc and lowered ulimits from a private containers.conf
# (CONTAINERS_CONF), its own storage (CONTAINERS_STORAGE_CONF) and CNI network directory under the
# cache directory: nothing under /etc is changed. Everything the test makes (containers, volume,
# network, namespaces, image tags) is removed on exit, also on failure; the base image and the
# rootfs tarball stay cached. Idempotent: leftovers of an interrupted run are removed first.
#
#   tests/container/run.sh               # the whole test
#   L2SEC_BIN_DIR=target/release tests/container/run.sh
#   L2SEC_CONTAINER_KEEP=1 ...           # keep everything on failure, for a look
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../scripts/lib/common.sh"
cd "$L2SEC_ROOT"
started=$SECONDS

[ "$(id -u)" -eq 0 ] || { echo "tests/container/run.sh needs root (podman, namespaces)" >&2; exit 1; }
ensure_apt podman runc containernetworking-plugins iptables mmdebstrap binutils iproute2 \
  iputils-ping nftables python3 util-linux strace

BIN_DIR=$(readlink -f "${L2SEC_BIN_DIR:-$L2SEC_ROOT/target/debug}")
for b in l2sec-server l2sec-client; do
  [ -x "$BIN_DIR/$b" ] || { echo "no $BIN_DIR/$b: build it first (cargo build --bins)" >&2; exit 1; }
done
CACHE=${L2SEC_CONTAINER_CACHE:-$HOME/.cache/l2sec-container}
P=l2sec-ct                              # prefix of everything this test makes
IMAGE=localhost/l2sec-server:$P-test
BASE=docker.io/library/debian:bookworm-slim
NET=$P-net SUBNET=10.213.77 SERVER_IP=10.213.77.10 LAN_IP=10.213.77.50
NAT_SUBNET=192.168.213
POOL_LOCAL=172.16.1.1
PSK="ct-$RANDOM-$RANDOM-psk"
WORK=$(mktemp -d /tmp/l2sec-container.XXXXXX)
failures=0

fail() { printf '\033[1;31mFAIL: %s\033[0m\n' "$*" >&2; failures=$((failures + 1)); }
pass() { printf 'ok: %s\n' "$*" >&2; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# syscalls FILE...: the system call names in `strace -c` summaries.
syscalls() { awk '$NF ~ /^[a-z_0-9]+$/ && $1 ~ /^[0-9.]+$/ { print $NF }' "$@" | grep -vx total | sort -u; }
# expand_set @SET: the system calls of a systemd-analyze syscall-filter set, sub-sets expanded.
expand_set() {
  systemd-analyze syscall-filter "$1" | awk 'NR > 1 && $1 !~ /^#/ { print $1 }' | while read -r n; do
    case $n in @*) expand_set "$n" ;; *) echo "$n" ;; esac
  done | sort -u
}
# has_log CONTAINER PATTERN: the container's log so far matches (read whole: no SIGPIPE under
# pipefail, as `podman logs | grep -q` would risk).
has_log() { podman logs "$1" >"$WORK/$1.out" 2>&1; grep -qE -- "$2" "$WORK/$1.out"; }

# --- podman, privately configured ---------------------------------------------------------------
mkdir -p "$CACHE/storage" "$CACHE/cni"
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 4096 ] && nofile=4096
[ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
cat >"$WORK/containers.conf" <<EOF
# crun fails on this machine's mixed cgroup v1/v2 setup; podman's default ulimits exceed the
# hard limits here.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "cni"
network_config_dir = "$CACHE/cni"
EOF
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$CACHE/storage"
runroot = "/run/$P-storage"
EOF
export CONTAINERS_CONF=$WORK/containers.conf CONTAINERS_STORAGE_CONF=$WORK/storage.conf
# Without systemd as PID 1 podman cannot schedule health checks by timer and says so on every
# run/stop/rm; the test runs them itself (`podman healthcheck run`), so that line is dropped.
# (Synchronous: `podman logs` writes the container's stderr through this filter.)
podman() {
  local rc
  { command podman "$@" 2>&1 1>&3 3>&- | { grep -v 'unable to get systemd connection' >&2 || true; }
    rc=${PIPESTATUS[0]}; } 3>&1
  return "$rc"
}

# --- clean-up (also of an interrupted earlier run) ----------------------------------------------
pids=()
remove_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  podman rm -f -t 0 "$P-server" "$P-state" "$P-systemd" >/dev/null 2>&1 || true
  podman volume rm -f "$P-state" >/dev/null 2>&1 || true
  podman network rm -f "$NET" >/dev/null 2>&1 || true
  rm -rf "/var/lib/cni/networks/$NET"   # CNI's address bookkeeping, left behind by network rm
  podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
  for ns in "$P-unit" "$P-plain" "$P-nat" "$P-natc" "$P-lan"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  for l in "$P-v1" "$P-v2" "$P-v3"; do ip link del "$l" 2>/dev/null || true; done
}
on_exit() {
  local rc=$?
  if [ "${L2SEC_CONTAINER_KEEP:-0}" = 1 ] && { [ $rc -ne 0 ] || [ $failures -ne 0 ]; }; then
    echo "kept for inspection: $WORK, containers/network/namespaces $P-*" >&2
    return
  fi
  remove_all
  rm -rf "$WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
remove_all

# --- 1. the systemd unit -------------------------------------------------------------------------
log "container 1/5: packaging/l2sec-server.service"
unit=packaging/l2sec-server.service
if command -v systemd-analyze >/dev/null 2>&1; then
  # ExecStart= names /usr/local/bin/l2sec-server: a private mount namespace puts the binary there
  # for the verification only.
  if unshare -m --propagation private sh -c '
      mount -t tmpfs tmpfs /usr/local/bin && cp "$1" /usr/local/bin/l2sec-server &&
      systemd-analyze verify "$2"' sh "$BIN_DIR/l2sec-server" "$unit" >"$WORK/verify.log" 2>&1; then
    pass "systemd-analyze verify $unit"
  else
    cat "$WORK/verify.log" >&2
    fail "systemd-analyze verify $unit"
  fi
  systemd-analyze security --offline=true "$unit" >"$WORK/security.log" 2>&1 || true
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' "$WORK/security.log")
  if [ -n "$score" ] && awk -v s="${score% *}" 'BEGIN { exit !(s <= 3.0) }'; then
    pass "systemd-analyze security: exposure $score (0 best, 10 worst; this test wants <= 3.0)"
    grep '✗' "$WORK/security.log" | sed 's/  */ /g; s/^/    /' >&2 || true
  else
    cat "$WORK/security.log" >&2; fail "systemd-analyze security: exposure '$score', want <= 3.0"
  fi
else
  echo "SKIPPED: no systemd-analyze on this machine" >&2
fi
# The server starts with the unit's capability bounding set and no_new_privs (in a scratch
# network namespace): TUN, routes, raw ESP and UDP 500 need nothing more.
ip netns add "$P-unit"
in_ns "$P-unit" ip link set lo up
caps=+net_admin,+net_raw,+net_bind_service
ip netns exec "$P-unit" setpriv --bounding-set=-all,$caps --inh-caps=-all,$caps --ambient-caps=-all,$caps \
  --no-new-privs env L2SEC_PSK=x L2SEC_STATE_DIR="$WORK/unit-state" \
  strace -f -qq -c -o "$WORK/strace-unit.txt" "$BIN_DIR/l2sec-server" run >"$WORK/unit-server.log" 2>&1 &
unit_pid=$!
pids+=("$unit_pid")
for _ in $(seq 50); do
  grep -q 'l2sec-server running' "$WORK/unit-server.log" && break
  kill -0 $unit_pid 2>/dev/null || break
  sleep 0.1
done
if grep -q 'l2sec-server running' "$WORK/unit-server.log"; then
  pass "the server runs with only CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE and no_new_privs"
else
  cat "$WORK/unit-server.log" >&2; fail "the server did not start with the unit's capabilities"
fi
# (ip netns exec, setpriv and env exec into strace, $unit_pid; the server is its child.)
pkill -TERM -x -P "$unit_pid" l2sec-server || true
for _ in $(seq 50); do kill -0 "$unit_pid" 2>/dev/null || break; sleep 0.1; done
ip netns pids "$P-unit" | xargs -r kill -KILL 2>/dev/null || true
unit_rc=0
wait "$unit_pid" 2>/dev/null || unit_rc=$?
if [ "$unit_rc" = 0 ] && grep -q 'shutting down' "$WORK/unit-server.log"; then
  pass "... and exits 0 on SIGTERM, as systemctl stop expects"
else
  fail "the server under the unit's capabilities: exit $unit_rc on SIGTERM"
fi
ip netns del "$P-unit"
# The unit's SystemCallFilter=, as a list: the server's system calls are checked against it below
# (this start-up and stop, and the container's server while two clients connect and pass traffic).
if command -v systemd-analyze >/dev/null 2>&1; then
  allow=$(expand_set @system-service)
  deny=$(sed -n 's/^SystemCallFilter=~//p' "$unit" | tr ' ' '\n' | while read -r set; do
    [ -n "$set" ] && expand_set "$set"; done | sort -u)
  comm -23 <(echo "$allow") <(echo "$deny") >"$WORK/allowed-syscalls"
fi

# --- 2. the image ---------------------------------------------------------------------------------
log "container 2/5: base image and podman build"
t=$SECONDS
# Like debian:bookworm-slim: merged /usr without the usrmerge package (and its perl), no
# documentation, manual pages or translations. Each tarball is cached under a name made from its
# recipe; older recipes are deleted.
debstrap=(--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*')
[ -d /usr/share/mmdebstrap/hooks/merged-usr ] && debstrap+=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
# rootfs NAME PACKAGES: the path of a cached minbase bookworm tarball with PACKAGES added.
rootfs() {
  local opts=(--variant=minbase --format=tar --include="$2" "${debstrap[@]}") tarball f
  local sources=()
  tarball=$CACHE/$1-$(printf '%s\n' "${opts[@]}" | sha256sum | cut -c1-12).tar
  if [ ! -s "$tarball" ]; then
    # The machine's own apt sources (deb822 or one-line), else mmdebstrap's default mirror.
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
      [ -s "$f" ] && sources=("$f") && break
    done
    mmdebstrap --quiet "${opts[@]}" bookworm "$tarball.part" "${sources[@]}" >"$WORK/mmdebstrap.log" 2>&1 \
      || { cat "$WORK/mmdebstrap.log" >&2; return 1; }
    mv "$tarball.part" "$tarball"
    find "$CACHE" -maxdepth 1 -name "$1-*.tar*" ! -name "${tarball##*/}" -delete
  fi
  echo "$tarball"
}
# import_rootfs TARBALL NAME: imports the tarball as image NAME unless NAME already is it.
import_rootfs() {
  local id
  id=$(sha256sum "$1" | cut -c1-16)
  if [ "$(podman image inspect --format '{{index .Labels "l2sec.rootfs"}}' "$2" 2>/dev/null)" != "$id" ]; then
    podman import --quiet --change "LABEL l2sec.rootfs=$id" --change 'CMD ["bash"]' "$1" "$2" >/dev/null
    podman image prune -f >/dev/null   # the previous one, now untagged (this storage is ours)
  fi
}
# iproute2: the server sets its routes with `ip`; in the base, the build needs no mirror.
tarball=$(rootfs bookworm-minbase iproute2)
import_rootfs "$tarball" "$BASE"
ctx=$WORK/context
mkdir -p "$ctx/bin" "$ctx/packaging"
cp Containerfile "$ctx/"
cp -r packaging/container "$ctx/packaging/"
# Only the symbol tables stay: the debug binary is ~110 MB with its DWARF sections.
objcopy --strip-debug "$BIN_DIR/l2sec-server" "$ctx/bin/l2sec-server"
# --format docker keeps HEALTHCHECK (the OCI image format has no place for it).
# --network none: the RUN steps need no network (iproute2 is in the base), and podman's default
# network would leave its bridge behind.
podman build --quiet --pull=never --network none --format docker --build-arg SERVER_BIN=bin/l2sec-server \
  -t "$IMAGE" "$ctx" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE")
health_cmd=$(podman image inspect "$IMAGE" | grep -A3 -i '"healthcheck"' | tr -s ' \n' ' ' || true)
printf 'image %s: %d MB (base %d MB, l2sec-server %d MB), built in %d s\n' "$IMAGE" \
  $((size / 1000000)) $((base_size / 1000000)) $(($(stat -c %s "$ctx/bin/l2sec-server") / 1000000)) \
  $((SECONDS - t)) >&2
case $health_cmd in
  *l2sec-healthcheck*) pass "the image has its HEALTHCHECK" ;;
  *) fail "the image has no HEALTHCHECK ($health_cmd)" ;;
esac

# Configuration from the environment: every variable lands in the file and the server accepts it;
# a bad value is refused before the server starts.
if out=$(podman run --rm --network none -e L2SEC_AUTH='mschapv2, pap' -e L2SEC_TUN=vpn0 \
    -e L2SEC_TUN_MTU=1380 -e L2SEC_DPD_INTERVAL=15s -e L2SEC_ALLOW='10.0.0.0/8, 192.168.0.0/16' \
    -e L2SEC_LISTEN=0.0.0.0 -e L2SEC_POOL=10.9.0.10-10.9.0.50 -e L2SEC_POOL_LOCAL=10.9.0.1 \
    -e L2SEC_USERS='x:y' "$IMAGE" show-config 2>&1) \
  && grep -qF 'auth = ["mschapv2", "pap"]' <<<"$out" && grep -qF 'name = "vpn0"' <<<"$out" \
  && grep -qF 'mtu = 1380' <<<"$out" && grep -qF 'dpd_interval = "15s"' <<<"$out" \
  && grep -qF 'allowed = ["10.0.0.0/8", "192.168.0.0/16"]' <<<"$out" \
  && grep -q 'configuration is valid' <<<"$out"; then
  pass "show-config: every L2SEC_* variable in the file, accepted by check-config"
else
  echo "$out" >&2; fail "show-config with every variable"
fi
if out=$(podman run --rm --network none -e L2SEC_AUTH=bogus "$IMAGE" show-config 2>&1); then
  echo "$out" >&2; fail "show-config accepted L2SEC_AUTH=bogus"
else
  pass "show-config refuses L2SEC_AUTH=bogus: $(grep -m1 -i 'error' <<<"$out" | cut -c1-150)"
fi

# --- 3. server container, two clients, traffic, health, SIGTERM ----------------------------------
log "container 3/5: the server container with two clients (plain ESP and NAT-T)"
podman network create --subnet "$SUBNET.0/24" --gateway "$SUBNET.1" "$NET" >/dev/null

# Exactly the documented flags, plus forwarding for the LAN (a namespaced sysctl) and a read-only
# root file system (podman puts a tmpfs on /run, where the entrypoint writes). The default
# wildcard listen address: the plain client must still get raw ESP.
podman run -d --name "$P-server" --network "$NET" --ip "$SERVER_IP" \
  --cap-add NET_ADMIN --cap-add NET_RAW --device /dev/net/tun \
  --sysctl net.ipv4.ip_forward=1 --read-only -v "$P-state:/var/lib/l2sec" \
  -e L2SEC_PSK="$PSK" -e L2SEC_USERS="alice:alice-pw-1 bob:b\"ob\\pw" \
  -e L2SEC_ALLOW="$SUBNET.0/24" -e L2SEC_DNS="$LAN_IP" -e L2SEC_POOL_LOCAL="$POOL_LOCAL" \
  "$IMAGE" >/dev/null
for _ in $(seq 50); do
  has_log "$P-server" 'l2sec-server running' && break
  sleep 0.2
done
if has_log "$P-server" 'l2sec-server running'; then
  pass "server container up (only NET_ADMIN, NET_RAW, /dev/net/tun added)"
else
  podman logs "$P-server" >&2; fail "the server container did not start"; exit 1
fi
if has_log "$P-server" 'generated'; then
  fail "the server generated secrets although L2SEC_PSK and L2SEC_USERS were given"
fi

# The bridge exists once a container uses the network.
bridge=$(podman network inspect --format '{{.NetworkInterface}}' "$NET")
# attach NS VETH ADDRESS: a namespace with eth0 on the podman network's bridge.
attach() {
  ip netns add "$1"
  ip link add "$2" type veth peer name eth0 netns "$1"
  ip link set "$2" master "$bridge" up
  in_ns "$1" ip link set lo up
  in_ns "$1" ip addr add "$3/24" dev eth0
  in_ns "$1" ip link set eth0 up
}
attach "$P-plain" "$P-v1" "$SUBNET.100"
attach "$P-nat" "$P-v2" "$SUBNET.101"
attach "$P-lan" "$P-v3" "$LAN_IP"
# The NAT: $P-natc (192.168.213.2) behind $P-nat, masqueraded to $SUBNET.101.
ip netns add "$P-natc"
in_ns "$P-nat" ip link add in0 type veth peer name eth0 netns "$P-natc"
in_ns "$P-nat" ip addr add "$NAT_SUBNET.1/24" dev in0
in_ns "$P-nat" ip link set in0 up
in_ns "$P-nat" sysctl -qw net.ipv4.ip_forward=1
in_ns "$P-nat" nft -f - <<'EOF'
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "eth0" masquerade; }
}
EOF
in_ns "$P-natc" ip link set lo up
in_ns "$P-natc" ip addr add "$NAT_SUBNET.2/24" dev eth0
in_ns "$P-natc" ip link set eth0 up
in_ns "$P-natc" ip route add default via "$NAT_SUBNET.1"
# The LAN host answers the pool through the server container.
in_ns "$P-lan" ip route add 172.16.1.0/24 via "$SERVER_IP"
ip netns exec "$P-lan" /usr/bin/python3 tests/container/echo.py serve "$LAN_IP" 7007 >"$WORK/echo.log" 2>&1 &
pids+=($!)


# connect NS USER PASSWORD: l2sec-client in NS, in the background, until it exits.
connect() {
  ip netns exec "$1" env L2SEC_PSK="$PSK" L2SEC_PASSWORD="$3" RUST_LOG=info \
    "$BIN_DIR/l2sec-client" connect --server "$SERVER_IP" --user "$2" \
    --route "$LAN_IP/32" --route "$POOL_LOCAL/32" --no-dns --no-reconnect --echo-interval 1 \
    --connect-timeout 30s --tun "$P-c0" --pid-file "$WORK/$1.pid" >"$WORK/$1.log" 2>&1 &
  pids+=($!)
  client_pids+=($!)
}
client_pids=()
# strace -c on the server while the clients connect and pass traffic, and again over SIGTERM:
# its system calls are checked against the unit's filter.
server_pid=$(podman inspect --format '{{.State.Pid}}' "$P-server")
strace -f -qq -c -p "$server_pid" -o "$WORK/strace-traffic.txt" &
strace_pid=$!
pids+=("$strace_pid")
sleep 0.5
t=$SECONDS
connect "$P-plain" alice alice-pw-1
connect "$P-natc" bob 'b"ob\pw'
for ns in "$P-plain" "$P-natc"; do
  up=
  for _ in $(seq 150); do
    if in_ns "$ns" "$BIN_DIR/l2sec-client" status --json --pid-file "$WORK/$ns.pid" >"$WORK/$ns.status" 2>/dev/null \
      && grep -q '"stage": "connected"' "$WORK/$ns.status"; then
      up=yes; break
    fi
    sleep 0.2
  done
  if [ -n "$up" ]; then
    pass "$ns connected in $((SECONDS - t)) s: $(/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(", ".join(f"{k} {s.get(k)}" for k in ("address","peer","ike","esp","nat","auth")))' "$WORK/$ns.status")"
  else
    cat "$WORK/$ns.log" >&2; fail "$ns did not connect"
  fi
done
podman logs "$P-server" 2>&1 | grep -E 'IKE SA|IPsec SA|user connected' | sed 's/^/    server: /' >&2 || true
# The plain client's ESP is raw IP protocol 50, the NAT'd one's is UDP-encapsulated.
sa_line() { podman logs "$P-server" 2>&1 | grep 'IPsec SA established' | grep "peer=$1:" | tail -1; }
case $(sa_line "$SUBNET.100") in
  *'encapsulation="udp-4500"'*|'') fail "the plain client has no raw-ESP SA: $(sa_line "$SUBNET.100")" ;;
  *) pass "plain client: raw ESP ($(grep -o 'encapsulation=[^ ]*' <<<"$(sa_line "$SUBNET.100")"))" ;;
esac
case $(sa_line "$SUBNET.101") in
  *'encapsulation="udp-4500"'*) pass "client behind the NAT: ESP in UDP 4500 (NAT-T)" ;;
  *) fail "the NAT'd client has no NAT-T SA: $(sa_line "$SUBNET.101")" ;;
esac

for ns in "$P-plain" "$P-natc"; do
  if out=$(in_ns "$ns" ping -c 5 -i 0.2 -W 2 "$POOL_LOCAL" 2>&1); then
    pass "$ns: ping $POOL_LOCAL (the server's PPP address): $(grep -o '[0-9]* received.*loss' <<<"$out"), $(grep -o 'rtt.*' <<<"$out")"
  else
    echo "$out" >&2; fail "$ns: ping $POOL_LOCAL"
  fi
  if out=$(in_ns "$ns" /usr/bin/python3 tests/container/echo.py tcp "$LAN_IP" 7007 2000000 2>&1); then
    pass "$ns: $out"
  else
    echo "$out" >&2; fail "$ns: TCP through the container"
  fi
  if out=$(in_ns "$ns" /usr/bin/python3 tests/container/echo.py udp "$LAN_IP" 7007 20 2>&1); then
    pass "$ns: $out"
  else
    echo "$out" >&2; fail "$ns: UDP through the container"
  fi
done

kill -INT "$strace_pid" 2>/dev/null || true
wait "$strace_pid" 2>/dev/null || true

# The server's own view, once it has `l2sec-server status` (issue 9, control and status).
help=$(podman exec "$P-server" l2sec-server --help 2>/dev/null || true)
if grep -qE '^ +status' <<<"$help"; then
  if out=$(podman exec "$P-server" l2sec-server status 2>&1) && grep -q alice <<<"$out" && grep -q bob <<<"$out"; then
    pass "l2sec-server status in the container lists alice and bob"; printf '    %s\n' "${out//$'\n'/$'\n    '}" >&2
  else
    echo "$out" >&2; fail "l2sec-server status in the container does not list alice and bob"
  fi
  if out=$(podman exec "$P-server" l2sec-server reload 2>&1) && grep -q 'configuration reloaded' <<<"$out" \
    && [ "$(podman exec "$P-server" l2sec-server status --json | grep -c '"state": "connected"')" = 2 ]; then
    pass "l2sec-server reload in the container: both sessions kept"
  else
    echo "$out" >&2; fail "l2sec-server reload in the container"
  fi
else
  echo "SKIPPED: l2sec-server has no 'status' subcommand yet" >&2
fi

# Health: healthy now; unhealthy while the server is stopped (a wedged server); healthy again.
if out=$(podman healthcheck run "$P-server" 2>&1); then
  status=$(podman inspect --format '{{.State.Health.Status}}' "$P-server" 2>/dev/null \
    || podman inspect --format '{{.State.Healthcheck.Status}}' "$P-server")
  pass "podman healthcheck run: exit 0${out:+ ($out)}, status $status"
else
  fail "health check of a working server: $out"
fi
podman exec "$P-server" /usr/local/bin/l2sec-healthcheck >&2 || fail "l2sec-healthcheck in the container"
server_pid=$(podman inspect --format '{{.State.Pid}}' "$P-server")
kill -STOP "$server_pid"
if out=$(podman exec "$P-server" /usr/local/bin/l2sec-healthcheck 2>&1); then
  fail "the health check passed while the server was stopped: $out"
else
  pass "health check while the server is stopped (SIGSTOP): $out"
fi
kill -CONT "$server_pid"
podman exec "$P-server" /usr/local/bin/l2sec-healthcheck >/dev/null 2>&1 \
  || fail "the health check did not recover after SIGCONT"

# SIGTERM: podman stop; the server must exit by itself (not be killed after the timeout).
strace -f -qq -c -p "$server_pid" -o "$WORK/strace-stop.txt" &
strace_pid=$!
pids+=("$strace_pid")
sleep 0.5
t=$SECONDS
podman stop -t 10 "$P-server" >/dev/null
wait "$strace_pid" 2>/dev/null || true
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$P-server")
if [ "$exit_code" = 0 ]; then
  pass "podman stop: the server exited with 0 after SIGTERM in $((SECONDS - t)) s"
else
  fail "podman stop: exit code $exit_code after $((SECONDS - t)) s (137: killed, SIGTERM ignored)"
fi
podman logs "$P-server" >"$WORK/server.log" 2>&1
if grep -q 'shutting down' "$WORK/server.log"; then
  pass "server logged 'shutting down'"
else
  fail "no 'shutting down' in the server log"
fi
sed -n '/stopping/,$p' "$WORK/server.log" | head -20 | sed 's/^/    server: /' >&2
# Each client ends either because the server said goodbye (IKE Delete, StopCCN/CDN, LCP
# Terminate: at once) or because it found the server dead (LCP echo, --echo-interval 1: ~5 s).
goodbye=0
for i in "${!client_pids[@]}"; do
  ns=$([ "$i" = 0 ] && echo "$P-plain" || echo "$P-natc")
  for _ in $(seq 100); do kill -0 "${client_pids[$i]}" 2>/dev/null || break; sleep 0.1; done
  last=$(grep -E 'connection failed|connection lost' "$WORK/$ns.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g')
  echo "    $ns ($((SECONDS - t)) s after the stop): ${last:-still running}" >&2
  if [ -n "$last" ] && ! grep -qE 'EchoTimeout|Timeout|Unreachable|Dead|Dpd|HelloTimeout' <<<"$last"; then
    goodbye=$((goodbye + 1))
  fi
done
# The server's goodbye: from its "stopping" line on, StopCCN (Shutting Down) per tunnel and a
# Delete per IKE SA.
server_goodbye=$(sed -n '/stopping/,$p' "$WORK/server.log" | grep -ciE 'SHUTTING_DOWN|IKE SA deleted' || true)
if [ $goodbye -eq 2 ] && [ "$server_goodbye" -ge 2 ]; then
  pass "clean hang-up on SIGTERM: both clients were told (server: $server_goodbye StopCCN/IKE-delete line(s))"
else
  fail "no clean hang-up on SIGTERM (clients told: $goodbye/2, server StopCCN/IKE-delete lines: $server_goodbye)"
fi
podman rm -f "$P-server" >/dev/null

if [ -s "$WORK/allowed-syscalls" ]; then
  used=$(syscalls "$WORK"/strace-*.txt)
  outside=$(comm -23 <(echo "$used") "$WORK/allowed-syscalls" | tr '\n' ' ')
  if [ -z "$outside" ]; then
    pass "the unit's SystemCallFilter= allows all $(wc -l <<<"$used") system calls the server made (start-up, clients, traffic, SIGTERM)"
    echo "    $(tr '\n' ' ' <<<"$used")" >&2
  else
    fail "system calls the server made outside the unit's SystemCallFilter=: $outside"
  fi
fi

# --- 4. the systemd unit under systemd ------------------------------------------------------------
log "container 4/5: packaging/l2sec-server.service run by systemd, a client through it"
# systemd 252 as PID 1 of a container on the test network. --privileged is for this harness only:
# systemd needs it to build the unit's sandbox (mount namespaces, seccomp, device cgroup) inside a
# container; on a host the unit needs nothing of the kind.
SD_IP=$SUBNET.20
import_rootfs "$(rootfs bookworm-systemd iproute2,systemd,systemd-sysv,dbus,procps)" "localhost/$P-systemd:base"
podman run -d --name "$P-systemd" --privileged --systemd=always --network "$NET" --ip "$SD_IP" \
  "localhost/$P-systemd:base" /lib/systemd/systemd >/dev/null
for _ in $(seq 75); do
  case $(podman exec "$P-systemd" systemctl is-system-running 2>/dev/null) in running | degraded) break ;; esac
  sleep 0.2
done
podman cp "$ctx/bin/l2sec-server" "$P-systemd:/usr/local/bin/l2sec-server"
podman cp "$unit" "$P-systemd:/etc/systemd/system/l2sec-server.service"
printf '[server]\nlisten = "%s"\n[ipsec]\npsk = "%s"\n[users]\nfile = "/etc/l2sec/users.toml"\n' \
  "$SD_IP" "$PSK" >"$WORK/sd-server.toml"
printf '[[user]]\nname = "carol"\npassword = "carol-pw-3"\n' >"$WORK/sd-users.toml"
podman exec "$P-systemd" install -d -m 0700 /etc/l2sec
podman cp "$WORK/sd-server.toml" "$P-systemd:/etc/l2sec/server.toml"
podman cp "$WORK/sd-users.toml" "$P-systemd:/etc/l2sec/users.toml"
if podman exec "$P-systemd" sh -c 'systemctl daemon-reload && systemctl start l2sec-server' >"$WORK/systemd.log" 2>&1 \
  && [ "$(podman exec "$P-systemd" systemctl is-active l2sec-server)" = active ]; then
  main=$(podman exec "$P-systemd" systemctl show -P MainPID l2sec-server)
  sandbox=$(podman exec "$P-systemd" grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$main/status" | tr -s '\t\n' '  ')
  case $sandbox in
    *'CapEff: 0000000000003400 CapBnd: 0000000000003400 CapAmb: 0000000000003400 NoNewPrivs: 1 Seccomp: 2'*)
      pass "systemd started the unit: NET_BIND_SERVICE, NET_ADMIN, NET_RAW only (0x3400), no_new_privs, seccomp" ;;
    *) fail "the unit's process is not sandboxed as expected: $sandbox" ;;
  esac
else
  cat "$WORK/systemd.log" >&2
  podman exec "$P-systemd" journalctl -u l2sec-server --no-pager >&2 || true
  fail "systemd could not start packaging/l2sec-server.service"
fi
SERVER_IP=$SD_IP connect "$P-plain" carol carol-pw-3
for _ in $(seq 100); do
  in_ns "$P-plain" "$BIN_DIR/l2sec-client" status --json --pid-file "$WORK/$P-plain.pid" >"$WORK/sd.status" 2>/dev/null \
    && grep -q '"stage": "connected"' "$WORK/sd.status" && break
  sleep 0.2
done
if out=$(in_ns "$P-plain" ping -c 5 -i 0.2 -W 2 "$POOL_LOCAL" 2>&1); then
  pass "a client through the server systemd runs: ping $POOL_LOCAL, $(grep -o '[0-9]* received.*loss' <<<"$out")"
else
  cat "$WORK/$P-plain.log" >&2; fail "no ping through the server systemd runs"
fi
# The control socket under the unit's sandbox: status through /run/l2sec (RuntimeDirectory),
# `systemctl reload` (ExecReload: SIGHUP) keeps the session.
modes=$(podman exec "$P-systemd" stat -c '%a' /run/l2sec /run/l2sec/control.sock 2>&1 | tr '\n' ' ' || true)
if out=$(podman exec "$P-systemd" l2sec-server status 2>&1) && grep -q carol <<<"$out" && [ "$modes" = "700 600 " ]; then
  pass "l2sec-server status under systemd lists carol (/run/l2sec 700, control.sock 600)"
else
  echo "$out" >&2; fail "l2sec-server status under systemd: modes '$modes'"
fi
if podman exec "$P-systemd" systemctl reload l2sec-server \
  && [ "$(podman exec "$P-systemd" systemctl is-active l2sec-server)" = active ] \
  && podman exec "$P-systemd" journalctl -u l2sec-server --no-pager -o cat | grep -q 'configuration reloaded' \
  && in_ns "$P-plain" ping -c 2 -W 2 "$POOL_LOCAL" >/dev/null 2>&1; then
  pass "systemctl reload: configuration reloaded, the session still pings"
else
  podman exec "$P-systemd" journalctl -u l2sec-server --no-pager -o cat | tail -20 >&2 || true
  fail "systemctl reload"
fi
in_ns "$P-plain" "$BIN_DIR/l2sec-client" disconnect --pid-file "$WORK/$P-plain.pid" >/dev/null 2>&1 || true
podman exec "$P-systemd" systemctl stop l2sec-server
result=$(podman exec "$P-systemd" systemctl show -P Result l2sec-server)
routes=$(podman exec "$P-systemd" ip route show 2>/dev/null | grep l2sec0 || true)
if [ "$result" = success ] && [ -z "$routes" ]; then
  pass "systemctl stop: Result=success, the pool route is gone"
else
  fail "systemctl stop: Result=$result, routes left: $routes"
fi
podman exec "$P-systemd" journalctl -u l2sec-server --no-pager -o cat >"$WORK/journal.log" 2>&1 || true
grep -E 'running|user connected|shutting' "$WORK/journal.log" | sed 's/^/    journal: /' >&2 || true
podman rm -f -t 0 "$P-systemd" >/dev/null

# --- 5. generated state in the volume -----------------------------------------------------------
log "container 5/5: generated PSK and user kept in the volume; a mounted TOML file"
podman volume rm -f "$P-state" >/dev/null
cat >"$WORK/server.toml" <<'EOF'
# no psk, no users file: generated into the state directory (the volume)
[pool]
range = "172.16.9.2-172.16.9.20"
local = "172.16.9.1"
EOF
# The strictest form: no capability but the server's three, read-only root, JSON logs.
podman run -d --name "$P-state" --network "$NET" --read-only \
  --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW --cap-add NET_BIND_SERVICE \
  --device /dev/net/tun -e L2SEC_LOG_FORMAT=json \
  -v "$P-state:/var/lib/l2sec" -v "$WORK/server.toml:/etc/l2sec/server.toml:ro" \
  "$IMAGE" >/dev/null
wait_running() {
  for _ in $(seq 50); do
    [ "$(podman logs "$P-state" 2>&1 | grep -c 'l2sec-server running')" -ge "$1" ] && return 0
    sleep 0.2
  done
  return 1
}
wait_running 1 || { podman logs "$P-state" >&2; fail "the state container did not start"; }
vol=$(podman volume inspect --format '{{.Mountpoint}}' "$P-state")
modes=$(stat -c '%n %a' "$vol/psk" "$vol/users.toml" 2>&1 | sed "s|$vol/||g" | tr '\n' ' ')
psk_before=$(cat "$vol/psk" 2>/dev/null || true)
if has_log "$P-state" '^\{.*"l2sec-server running"'; then
  pass "--cap-drop ALL + NET_ADMIN, NET_RAW, NET_BIND_SERVICE, --read-only: running, logs in JSON"
else
  fail "no JSON 'l2sec-server running' line with L2SEC_LOG_FORMAT=json"
fi
if has_log "$P-state" 'using the mounted configuration'; then
  pass "the mounted /etc/l2sec/server.toml is used"
else
  fail "the mounted configuration was not used"
fi
if podman exec "$P-state" /usr/local/bin/l2sec-healthcheck >/dev/null 2>&1; then
  pass "health check passes with the mounted file"
else
  fail "health check with the mounted file"
fi
podman restart -t 10 "$P-state" >/dev/null
wait_running 2 || { podman logs "$P-state" >&2; fail "the state container did not restart"; }
generated=$(podman logs "$P-state" 2>&1 | grep -c 'generated' || true)
if [ -n "$psk_before" ] && [ "$psk_before" = "$(cat "$vol/psk")" ] && [ "$generated" -eq 2 ] \
  && [ "$modes" = "psk 600 users.toml 600 " ]; then
  pass "PSK and user generated once into the volume ($modes), kept across a restart"
else
  fail "generated state: modes '$modes', 'generated' lines $generated (want 2: PSK and user, once)"
fi
podman rm -f -t 5 "$P-state" >/dev/null

elapsed=$((SECONDS - started))
if [ $failures -ne 0 ]; then
  printf '\033[1;31mcontainer test: %d failure(s) in %d s\033[0m\n' $failures $elapsed >&2
  exit 1
fi
printf 'container test: passed in %d s (image %d MB)\n' $elapsed $((size / 1000000)) >&2
