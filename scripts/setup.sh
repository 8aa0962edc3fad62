#!/usr/bin/env bash
# Installs what `make test` and `make demo` need on a Debian 12/13 lab or CI machine, as root;
# quiet and idempotent when everything is already there. NOT for a sensor: use
# scripts/install-sensor.sh there (this one adds bookworm-backports for Suricata 7 and installs
# lab tools, scanners, compilers and redis-server, which Debian starts on 127.0.0.1).
# It never stops or disables a service: the tests run their own Suricata, ovsdb-server and
# ovs-vswitchd with their own configs inside network namespaces.
#   scripts/setup.sh            system packages + .venv
#   scripts/setup.sh --venv     only the .venv
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc + python3-dev build the optional C EVE reader (scanguard_ids/eve/_fast.c) at pip install.
# masscan, zmap, redis-server: the scanners and the fleet store of the lab scenarios.
# crowdsec, crowdsec-firewall-bouncer: the tests run their own Local API (tests/crowdsec_lapi.py);
# the system's crowdsec service is never started or enabled here.
PKGS=(nmap ipset iptables nftables iproute2 tcpdump conntrack ethtool tmux fail2ban jq openvswitch-switch
      gcc python3-dev masscan zmap redis-server crowdsec crowdsec-firewall-bouncer)
log() { printf 'setup: %s\n' "$*" >&2; }

suricata_major() {
    command -v suricata >/dev/null 2>&1 || { echo 0; return; }
    suricata -V 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1
}

install_system() {
    [ "$(id -u)" = 0 ] || { log "not root: skipping system packages"; return 0; }
    local missing=() p codename
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    local want_suricata=0
    [ "$(suricata_major)" -ge 7 ] 2>/dev/null || want_suricata=1
    dpkg-query -W -f='${Status}' suricata-update 2>/dev/null | grep -q 'ok installed' || want_suricata=1
    [ ${#missing[@]} -eq 0 ] && [ $want_suricata = 0 ] && return 0

    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$want_suricata" = 1 ] && [ "$codename" = bookworm ] &&
        ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding bookworm-backports (Suricata 7)"
        cat > /etc/apt/sources.list.d/scanguard-backports.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    log "installing: ${missing[*]} $([ $want_suricata = 1 ] && echo suricata)"
    # Debian's crowdsec registers with the Central API at install (internet) unless this file
    # exists first; a comment alone disables that (README.Debian).
    if [[ " ${missing[*]} " == *" crowdsec "* ]] && [ ! -e /etc/crowdsec/online_api_credentials.yaml ]; then
        mkdir -p /etc/crowdsec
        echo '# no Central API (scanguard test machine)' > /etc/crowdsec/online_api_credentials.yaml
    fi
    apt-get update -qq >/dev/null
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if [ "$want_suricata" = 1 ]; then
        if [ "$codename" = bookworm ]; then
            apt-get install -y -qq --no-install-recommends -t bookworm-backports suricata suricata-update >/dev/null
        else
            apt-get install -y -qq --no-install-recommends suricata suricata-update >/dev/null
        fi
    fi
    [ "$(suricata_major)" -ge 7 ] || { log "Suricata 7 is required, got: $(suricata -V 2>&1 | head -n1)"; exit 1; }
}

install_venv() {
    local stamp=.venv/.scanguard-installed
    if [ ! -x .venv/bin/python ]; then
        log "creating .venv"
        python3 -m venv .venv
    fi
    # Reinstall when the package definition or the C reader changed, or its build is missing.
    local stale=0 f
    [ -f "$stamp" ] || stale=1
    for f in pyproject.toml setup.py scanguard_ids/eve/_fast.c; do
        [ "$f" -nt "$stamp" ] && stale=1
    done
    compgen -G 'scanguard_ids/eve/_fast*.so' >/dev/null || stale=1
    if [ "$stale" = 1 ]; then
        log "installing scanguard-ids into .venv"
        .venv/bin/pip install -q -e '.[test,lab,sdn,iptables]' 2>&1 | grep -v 'is ignored: it is neither' >&2 || true
        .venv/bin/python -c 'import scanguard_ids, orjson, rich, pyroute2, watchdog, pytest' ||
            { log "venv install failed"; exit 1; }
        .venv/bin/python -c 'import scanguard_ids.eve._fast' 2>/dev/null ||
            log "the C EVE reader did not build (no gcc/python3-dev?): replay runs pure Python, slower"
        touch "$stamp"
    fi
}

case "${1:-}" in
    --venv) install_venv ;;
    *) install_system; install_venv ;;
esac
