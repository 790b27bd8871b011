#!/bin/bash
# Health check of the l2sec-server image (HEALTHCHECK): exit 0 when the server is alive and
# serving, 1 otherwise, with one line saying why. It checks, from /proc and /sys only (the image
# has no iproute2):
#   1. an l2sec-server process runs (PID 1 normally: the entrypoint execs it);
#   2. UDP 500 and 4500 are bound;
#   3. its TUN device is up and the pool is routed to it (the server does both at start-up);
#   4. the server still reads its sockets: a NAT-T keepalive (one byte 0xFF, which the server
#      drops silently, RFC 3948 §2.3) sent to its UDP 4500 leaves the socket's receive queue
#      within L2SEC_HEALTH_WAIT seconds (default 3). A wedged event loop fails here.
set -uo pipefail

fail() { echo "unhealthy: $*"; exit 1; }

running=
for comm in /proc/[0-9]*/comm; do
  [ "$(cat "$comm" 2>/dev/null)" = l2sec-server ] && running=yes && break
done
[ -n "$running" ] || fail "no l2sec-server process"

# /proc/net/udp rows: "sl local_address rem_address st tx_queue:rx_queue ..." in hex.
# udp_socket PORT_HEX -> "ADDR_HEX RX_QUEUE_HEX" of the first IPv4 socket bound to that port.
udp_socket() {
  local laddr raddr queues
  while read -r _ laddr raddr _ queues _; do
    if [ "${laddr#*:}" = "$1" ] && [ "$raddr" = 00000000:0000 ]; then
      echo "${laddr%:*} ${queues#*:}"
      return 0
    fi
  done </proc/net/udp
  return 1
}

udp_socket 01F4 >/dev/null || fail "UDP 500 is not bound"
natt=$(udp_socket 1194) || fail "UDP 4500 is not bound"

# The configured name (L2SEC_TUN, default l2sec0) if there is such a TUN device, else the first
# TUN device (a mounted file may name another; in the container's own network namespace the
# server's is the only one).
tun=
if [ -e "/sys/class/net/${L2SEC_TUN:-l2sec0}/tun_flags" ]; then
  tun=${L2SEC_TUN:-l2sec0}
else
  for dev in /sys/class/net/*; do
    [ -e "$dev/tun_flags" ] && tun=${dev##*/} && break
  done
fi
[ -n "$tun" ] || fail "no TUN device"
flags=$(cat "/sys/class/net/$tun/flags")
(( flags & 1 )) || fail "TUN device $tun is down"
# /proc/net/route: "Iface Destination Gateway ..." — the pool's route names the TUN device.
grep -q "^${tun}[[:space:]]" /proc/net/route || fail "no route to the pool through $tun"

# The probe goes to the address the socket is bound to (loopback when it is the wildcard).
addr_hex=${natt% *}
if [ "$addr_hex" = 00000000 ]; then
  addr=127.0.0.1
else # little-endian hex
  addr=$((16#${addr_hex:6:2})).$((16#${addr_hex:4:2})).$((16#${addr_hex:2:2})).$((16#${addr_hex:0:2}))
fi
printf '\xff' >"/dev/udp/$addr/4500" 2>/dev/null || fail "cannot send a probe to $addr:4500"
# The wait is measured by the clock (microseconds since 1970, digits only whatever the locale's
# decimal point), not by counting sleeps: on a loaded machine each round of the loop takes longer
# than its 0.1 s sleep, which stretched "3 s" to 5 s and more (past HEALTHCHECK --timeout).
wait_s=${L2SEC_HEALTH_WAIT:-3}
[[ $wait_s =~ ^[0-9]{1,3}$ ]] || fail "L2SEC_HEALTH_WAIT: not a number of seconds"
started=${EPOCHREALTIME//[!0-9]/}
deadline=$(( started + 10#$wait_s * 1000000 ))
while :; do
  sleep 0.1
  natt=$(udp_socket 1194) || fail "UDP 4500 is not bound"
  if [ $((16#${natt#* })) -eq 0 ]; then
    echo "healthy: UDP 500/4500 bound and read, $tun up and routed"
    exit 0
  fi
  (( ${EPOCHREALTIME//[!0-9]/} < deadline )) || break
done
fail "the server does not read UDP 4500 ($((16#${natt#* })) bytes queued after $wait_s s): wedged?"
