#!/bin/bash
# Entrypoint of the l2sec-server image: finds or writes the configuration, then execs the server
# (PID 1, so `podman stop` / `docker stop` deliver SIGTERM to the server itself).
#
#   run                  (default) run the server
#   show-config          print the configuration the server would get, and check it
#   anything else        passed to l2sec-server as is (check-config FILE, --help, --version, ...)
#
# Configuration, first match wins:
#   1. a mounted file at $L2SEC_CONFIG (default /etc/l2sec/server.toml), used as is;
#   2. otherwise a file written to /run/l2sec/server.toml from these variables (all optional):
#        L2SEC_LISTEN    address for UDP 500/4500 and raw ESP              (default 0.0.0.0)
#        L2SEC_USERS     users, "name:password" separated by spaces or newlines
#                        (written to /run/l2sec/users.toml, mode 0600, never to the volume)
#        L2SEC_ALLOW     comma-separated IPv4 networks the clients may reach
#                        (default: the server's, 192.168.1.0/24); the server's own pool
#                        address always answers ping
#        L2SEC_AUTH      comma-separated PPP methods, in order (mschapv2,chap-md5,pap)
#        L2SEC_TUN       TUN device name                                   (default l2sec0)
#        L2SEC_TUN_MTU   its MTU                                           (default 1400)
#        L2SEC_DPD_INTERVAL  e.g. 30s
#      and, with a file or without, L2SEC_LOG_FORMAT (human or json).
#      The server itself reads L2SEC_PSK, L2SEC_POOL (FIRST-LAST), L2SEC_POOL_LOCAL,
#      L2SEC_DNS (comma-separated), L2SEC_USERS_FILE and L2SEC_STATE_DIR, with a file or without.
# State: /var/lib/l2sec (a volume). With no L2SEC_PSK and no users, the server generates a PSK
# and a user 'vpn' there on first start and prints them once (`podman logs`).
set -euo pipefail
set -f  # no pathname expansion: values are split into words, never globbed

say() { printf 'l2sec-entrypoint: %s\n' "$*" >&2; }
die() { say "$*"; exit 64; }

# A TOML basic string: backslash and quote escaped (control characters are refused up front).
toml_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# "a, b,c" -> ["a", "b", "c"]
toml_list() {
  local IFS=, item out=
  for item in $1; do
    item=${item#"${item%%[![:space:]]*}"}
    item=${item%"${item##*[![:space:]]}"}
    [ -n "$item" ] || continue
    out+="${out:+, }$(toml_str "$item")"
  done
  printf '[%s]' "$out"
}

write_users() {
  local file=$1 entry name password
  umask 077
  : >"$file"
  # One entry per word: passwords may not contain whitespace here (use a mounted users file or
  # L2SEC_USERS_FILE for those).
  for entry in $L2SEC_USERS; do
    case $entry in
      *:*) ;;
      *) die "L2SEC_USERS: '$entry' is not name:password" ;;
    esac
    case $entry in
      *[[:cntrl:]]*) die "L2SEC_USERS: control characters are not allowed" ;;
    esac
    name=${entry%%:*}
    password=${entry#*:}
    [ -n "$name" ] && [ -n "$password" ] || die "L2SEC_USERS: empty name or password"
    printf '[[user]]\nname = %s\npassword = %s\n\n' "$(toml_str "$name")" "$(toml_str "$password")" >>"$file"
  done
}

write_config() {
  local file=$1
  {
    printf '# written by l2sec-entrypoint from the environment (%s)\n' "$(date -u +%FT%TZ)"
    printf '[server]\nlisten = %s\n' "$(toml_str "${L2SEC_LISTEN:-0.0.0.0}")"
    if [ -n "${L2SEC_DPD_INTERVAL:-}" ]; then
      printf '[ipsec]\ndpd_interval = %s\n' "$(toml_str "$L2SEC_DPD_INTERVAL")"
    fi
    if [ -n "${L2SEC_AUTH:-}" ]; then
      printf '[ppp]\nauth = %s\n' "$(toml_list "$L2SEC_AUTH")"
    fi
    if [ -n "${L2SEC_ALLOW:-}" ]; then
      printf '[policy]\nnetworks = { allowed = %s }\n' "$(toml_list "$L2SEC_ALLOW")"
      printf 'rules = ["allow pool -> allowed", "allow pool -> lns proto icmp"]\n'
    fi
    printf '[tun]\nname = %s\n' "$(toml_str "${L2SEC_TUN:-l2sec0}")"
    if [ -n "${L2SEC_TUN_MTU:-}" ]; then
      [[ $L2SEC_TUN_MTU =~ ^[0-9]{1,5}$ ]] || die "L2SEC_TUN_MTU: not a number"
      printf 'mtu = %s\n' "$L2SEC_TUN_MTU"
    fi
  } >"$file"
}

command=${1:-run}
case $command in
  run | show-config) shift || true ;;
  *) exec /usr/local/bin/l2sec-server "$@" ;;
esac

# Values go into TOML strings: no control characters (L2SEC_USERS is checked per entry).
for var in "${!L2SEC_@}"; do
  [ "$var" = L2SEC_USERS ] && continue
  case ${!var} in
    *[[:cntrl:]]*) die "$var: control characters are not allowed" ;;
  esac
done

config=${L2SEC_CONFIG:-/etc/l2sec/server.toml}
if [ -f "$config" ]; then
  say "using the mounted configuration $config"
else
  mkdir -p /run/l2sec
  chmod 0700 /run/l2sec
  if [ -n "${L2SEC_USERS:-}" ]; then
    write_users /run/l2sec/users.toml
    export L2SEC_USERS_FILE=/run/l2sec/users.toml
  fi
  config=/run/l2sec/server.toml
  write_config "$config"
  say "configuration written from the environment to $config"
  # The server drops root to nobody ([server] user) once set up and reads these files again on
  # `l2sec-server reload`: its group may read them (the container holds nothing else). Without
  # CAP_CHOWN (--cap-drop ALL) it cannot switch users either, and stays their owner.
  if chgrp -R nogroup /run/l2sec 2>/dev/null; then
    chmod 0750 /run/l2sec
    chmod 0640 "$config"
    [ ! -f /run/l2sec/users.toml ] || chmod 0640 /run/l2sec/users.toml
  fi
fi
unset L2SEC_USERS
if [ "$command" = show-config ]; then
  cat "$config"
  exec /usr/local/bin/l2sec-server check-config "$config"
fi
exec /usr/local/bin/l2sec-server --log-format "${L2SEC_LOG_FORMAT:-human}" run --config "$config" "$@"
