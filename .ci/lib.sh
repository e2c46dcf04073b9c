# Shared helpers for the .ci scripts (sourced, not run).
# shellcheck shell=bash

step() { printf '\n== %s\n' "$*"; }

# Disk: CI builds every target once, so incremental caches are dead weight (2.9 GB of a clean run),
# and failures are read by file and line, so debug builds carry line tables only, as Cargo.toml's
# dev profile says (full debug info made the debug target 13 GB: ~60 MB per test binary). A clean
# run once died of a full disk in its sanitizer step. Set here too, so that every step, run alone
# or by .ci/run, builds with the same profile whatever the caller's environment says (a mismatch
# would rebuild everything when a test runs cargo itself).
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only

# disk_report: free space on the target's filesystem and the target's size, for the log.
disk_report() {
    local t=${CARGO_TARGET_DIR:-target}
    printf 'disk: %s free; %s in %s\n' "$(df -h --output=avail . | tail -1 | tr -d ' ')" \
        "$( (du -sh "$t" 2>/dev/null || echo '0 -') | cut -f1)" "$t"
}

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
