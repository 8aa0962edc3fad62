#!/usr/bin/env bash
# Installs the scanguard-ids daemon on a sensor (Debian 12/13, as root) without disturbing it:
# it never stops, disables, restarts or reconfigures a service, never adds an apt source and never
# edits Suricata's config (docs/suricata.md says what to add there, and which step needs a restart).
#
#   scripts/install-sensor.sh [--prefix DIR] [--backend auto|ipset|nftables] [--no-apt]
#
# What it does, each step skipped when already done:
#   - Debian packages the daemon needs, only if missing: python3-venv, and ipset + iptables
#     (--backend ipset) or nftables (--backend nftables; auto: nftables unless one is there);
#   - a virtualenv in PREFIX (default /opt/scanguard) with this checkout pip-installed
#     (the C EVE reader is built when gcc and python3-dev happen to be there);
#   - the rule pack in PREFIX/rules/ (scanguard.rules for Suricata), README and docs in PREFIX/doc/;
#   - /etc/systemd/system/scanguard.service, /etc/logrotate.d/scanguard and
#     /etc/scanguard/scanguard.toml, each only if absent (a changed one is left alone and the new
#     version written next to it as *.dist).
# SCANGUARD_ETC=DIR puts those three under DIR instead of /etc (tests use it).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)

PREFIX=/opt/scanguard
BACKEND=auto
APT=1
PYTHON=${PYTHON:-/usr/bin/python3}
ETC=${SCANGUARD_ETC:-/etc}
log() { printf 'install-sensor: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --backend) BACKEND=${2:?--backend needs a name}; shift 2 ;;
        --backend=*) BACKEND=${1#*=}; shift ;;
        --no-apt) APT=0; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
case "$BACKEND" in auto|ipset|nftables) ;; *) die "--backend must be auto, ipset or nftables" ;; esac
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path" ;; esac
[ "$(id -u)" = 0 ] || [ "$APT" = 0 ] || die "run as root (it installs Debian packages; --no-apt: only files)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

install_packages() {
    local want=(python3-venv) missing=() p
    if [ "$BACKEND" = auto ]; then
        if command -v ipset >/dev/null && command -v iptables >/dev/null; then BACKEND=ipset
        else BACKEND=nftables; fi
    fi
    if [ "$BACKEND" = ipset ]; then want+=(ipset iptables); else want+=(nftables); fi
    for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$APT" = 1 ] || die "missing Debian packages: ${missing[*]} (--no-apt given)"
    log "installing Debian packages: ${missing[*]}"
    # policy: only the packages named; no recommends, no new sources.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    }
}

install_venv() {
    [ -x "$PREFIX/bin/python" ] || { log "creating the virtualenv $PREFIX"; "$PYTHON" -m venv "$PREFIX"; }
    log "installing scanguard-ids from $SRC into $PREFIX"
    # A copy, so the checkout gets no build/ or egg-info and the install does not depend on it.
    mkdir "$TMP/src"
    tar -C "$SRC" --exclude=.git --exclude=.venv --exclude=build --exclude='*.egg-info' \
        --exclude='_fast*.so' -cf - . | tar -C "$TMP/src" -xf -
    "$PREFIX/bin/pip" install -q --upgrade "$TMP/src" 2>&1 | grep -v 'is ignored: it is neither' >&2 || true
    "$PREFIX/bin/scanguard" --version >/dev/null || die "the install into $PREFIX failed"
    if "$PREFIX/bin/python" -I -c 'import scanguard_ids.eve._fast' 2>/dev/null; then
        log "C EVE reader built"
    else
        log "C EVE reader not built (no gcc/python3-dev): the daemon reads EVE in pure Python"
    fi
}

# install_file SRC DEST MODE: install if absent; an edited DEST is kept and SRC goes to DEST.dist.
install_file() {
    local src=$1 dest=$2 mode=$3
    mkdir -p "$(dirname "$dest")"
    if [ ! -e "$dest" ]; then
        install -m "$mode" "$src" "$dest"; log "wrote $dest"
    elif ! cmp -s "$src" "$dest"; then
        install -m "$mode" "$src" "$dest.dist"; log "kept your $dest; the new version is $dest.dist"
    fi
}

install_files() {
    local tmp=$TMP
    mkdir -p "$PREFIX/rules"
    install -m 0644 "$SRC"/rules/*.rules "$SRC/rules/VERSION" "$SRC/rules/CHANGELOG.md" "$PREFIX/rules/"
    mkdir -p "$PREFIX/doc"  # the unit's Documentation=
    install -m 0644 "$SRC/README.md" "$SRC/docs/suricata.md" "$SRC/LICENSE" "$PREFIX/doc/"
    sed "s|/opt/scanguard/|$PREFIX/|g" "$SRC/examples/scanguard.service" > "$tmp/scanguard.service"
    install_file "$tmp/scanguard.service" "$ETC/systemd/system/scanguard.service" 0644
    install_file "$SRC/examples/scanguard.logrotate" "$ETC/logrotate.d/scanguard" 0644
    sed "s|^backend = \"auto\"|backend = \"$BACKEND\"|" "$SRC/examples/scanguard.toml" > "$tmp/scanguard.toml"
    install_file "$tmp/scanguard.toml" "$ETC/scanguard/scanguard.toml" 0644
}

install_packages
install_venv
install_files
cat >&2 <<EOF
install-sensor: done. Rules: $PREFIX/rules/scanguard.rules; config: $ETC/scanguard/scanguard.toml.
Next (nothing was started or changed in Suricata):
  1. Suricata: docs/suricata.md (rules: no restart; the EVE output: one Suricata restart)
  2. $PREFIX/bin/scanguard config check --config $ETC/scanguard/scanguard.toml
  3. systemctl daemon-reload && systemctl enable --now scanguard
EOF
