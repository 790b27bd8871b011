# Shared by scripts/test and scripts/demo: idempotent installs and the project root.
# shellcheck shell=bash

L2SEC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export L2SEC_ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Rust toolchain with rustfmt and clippy (the machine has rustup; a fresh one gets it from rustup).
ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      ensure_apt curl ca-certificates build-essential
      log "installing the Rust toolchain with rustup"
      curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
      export PATH="$HOME/.cargo/bin:$PATH"
    fi
  fi
  if command -v rustup >/dev/null 2>&1; then
    local have
    have=$(rustup component list --installed 2>/dev/null || true)
    for c in rustfmt clippy; do
      case "$have" in
        *"$c"*) ;;
        *) log "adding rustup component $c"; rustup component add "$c" ;;
      esac
    done
  fi
}

# ensure_apt PKG...: installs the Debian packages that are missing, once.
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to apt-get install ${missing[*]}" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local i
  for i in 1 2 3; do
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
      return 0
    fi
    log "apt-get failed (try $i), retrying"
    sleep 10
  done
  return 1
}
