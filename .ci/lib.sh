# Shared helpers for the .ci scripts (sourced, not run).
# shellcheck shell=bash

step() { printf '\n== %s\n' "$*"; }

# Seconds since the run started, for the timing summary at the end.
ci_t0=${ci_t0:-$(date +%s)}
export ci_t0
elapsed() { echo $(( $(date +%s) - ci_t0 )); }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
# apt_install PKG...: installs the Debian packages that are missing (by the command they provide).
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# need CMD PKG: makes sure CMD exists, installing Debian's PKG when it does not.
need() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
    command -v "$1" >/dev/null 2>&1 || { echo "ci: $1 (package $2) could not be installed" >&2; return 1; }
}
