#!/usr/bin/env bash
# Install Godot 4 (Debian sid's `godot` package) into a debootstrap chroot cached outside the clone,
# and write a wrapper that runs it headless on a project directory.
#
# Why a chroot: Debian bookworm only has Godot 3, and sid's Godot 4.6 needs sid's glibc.
#
#   scripts/install_godot.sh            # idempotent; ~1 s when cached, ~35 s + download otherwise
#   $ROOT/run-godot PROJECT_DIR ARGS... # = godot --headless --path /proj ARGS... inside the chroot
#
# Environment: HUBBUB_GODOT_ROOT (default /var/cache/hubbub/godot-sid), HUBBUB_DEBIAN_MIRROR (default: the
# host's Debian apt source, else http://deb.debian.org/debian). Needs root (debootstrap, chroot, mount).
set -euo pipefail

ROOT="${HUBBUB_GODOT_ROOT:-/var/cache/hubbub/godot-sid}"
READY="$ROOT/.hubbub-godot-ready"
WRAPPER="$ROOT/run-godot"
WRAPPER_VERSION=4   # bump when the wrapper text below changes, so cached installs get the new one

log() { echo "install_godot: $*" >&2; }

host_mirror() {
    # First Debian URI from the host's apt sources (deb822 or one-line format).
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

write_wrapper() {
    # unshare -m gives every run a private mount namespace: concurrent runs each see their own /proj,
    # and the bind mounts vanish with the process (nothing to clean up, nothing leaks on a crash).
    cat >"$WRAPPER.tmp" <<'EOF'
#!/usr/bin/env bash
# run-godot PROJECT_DIR [ARGS...]  -> godot --headless --path /proj ARGS...  (inside the sid chroot)
# wrapper-version: 4
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: run-godot PROJECT_DIR [GODOT_ARGS...]" >&2; exit 2; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJ="$(cd "$1" && pwd)"; shift
# Everything below runs as one process (unshare, bash and chroot exec into godot), so signals reach godot.
exec unshare --mount --propagation private -- /bin/bash -c '
    set -e
    ROOT="$1"; PROJ="$2"; shift 2
    mkdir -p "$ROOT/proj" "$ROOT/tmp/hubbub-home"
    mount --bind "$PROJ" "$ROOT/proj"
    mount -t proc proc "$ROOT/proc"
    mount --rbind /dev "$ROOT/dev"
    mount -t tmpfs -o size=256m tmpfs "$ROOT/tmp/hubbub-home"   # per-run HOME, gone with the process
    exec chroot "$ROOT" /usr/bin/env -i HOME=/tmp/hubbub-home PATH=/usr/bin:/bin LANG=C.UTF-8 \
        godot --headless --path /proj "$@"
' run-godot "$ROOT" "$PROJ" "$@"
EOF
    chmod +x "$WRAPPER.tmp"
    mv "$WRAPPER.tmp" "$WRAPPER"
}

# godot, plus CA certificates so wss:// works (and Godot does not complain about the missing bundle).
PACKAGES=(godot ca-certificates)

install_packages() {
    chroot "$1" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
        apt-get -q -o Acquire::Check-Valid-Until=false install -y --no-install-recommends "${PACKAGES[@]}" >&2
    chroot "$1" apt-get clean
}

packages_missing() {
    local p
    for p in "${PACKAGES[@]}"; do
        chroot "$ROOT" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 0
    done
    return 1
}

install_chroot() {
    command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
    local mirror partial
    mirror="${HUBBUB_DEBIAN_MIRROR:-$(host_mirror)}"
    partial="$ROOT.partial"
    # A previous run died halfway: start that part over rather than trust it.
    rm -rf --one-file-system "$partial"
    mkdir -p "$(dirname "$ROOT")"
    log "debootstrap sid from $mirror into $partial"
    debootstrap --variant=minbase sid "$partial" "$mirror" >&2
    log "apt-get install godot"
    chroot "$partial" apt-get -q -o Acquire::Check-Valid-Until=false update >&2
    install_packages "$partial"
    rm -rf --one-file-system "$ROOT"
    mv "$partial" "$ROOT"
}

main() {
    mkdir -p "$(dirname "$ROOT")"
    # One installer at a time (parallel test sessions may all call this).
    exec 9>"$(dirname "$ROOT")/.install_godot.lock"
    flock 9
    if [ ! -f "$READY" ]; then
        local t0=$SECONDS
        install_chroot
        touch "$READY"
        log "installed in $((SECONDS - t0)) s"
    elif packages_missing; then
        log "adding packages to the cached chroot: ${PACKAGES[*]}"
        chroot "$ROOT" apt-get -q -o Acquire::Check-Valid-Until=false update >&2
        install_packages "$ROOT"
    fi
    if ! grep -q "wrapper-version: $WRAPPER_VERSION\$" "$WRAPPER" 2>/dev/null; then
        write_wrapper
    fi
    echo "$WRAPPER"
}

main "$@"
