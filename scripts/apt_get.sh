#!/usr/bin/env bash
# apt-get for the set-up scripts: `bash scripts/apt_get.sh update` / `... install PKG...`.
# Waits while another apt/dpkg process (unattended-upgrades, a second set-up) holds apt's
# lock, instead of failing at once: until APT_LOCK_DEADLINE (epoch seconds, shared by the
# calls of one set-up so the waits do not add up), else APT_LOCK_WAIT seconds (300).
# Prints nothing on success; apt's error lines only when it fails.
set -uo pipefail
deadline=${APT_LOCK_DEADLINE:-$(($(date +%s) + ${APT_LOCK_WAIT:-300}))}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
said=
while :; do
    left=$((deadline - $(date +%s)))
    [ "$left" -gt 0 ] || left=0
    # DPkg::Lock::Timeout makes install wait for dpkg's lock itself; `update` (the lists
    # lock) and older apt versions fail at once, hence the loop.
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$left" -y -qq \
        --no-install-recommends "$@" >"$out" 2>&1; then
        exit 0
    fi
    if grep -qE "Could not get lock|Unable to acquire|Unable to lock" "$out" && [ "$(date +%s)" -lt "$deadline" ]; then
        if [ -z "$said" ]; then
            echo "[setup] another apt/dpkg process holds the lock; waiting up to ${left}s"
            said=1
        fi
        sleep "${APT_LOCK_POLL:-3}"
        continue
    fi
    grep -E "^(E|W):" "$out" | sort -u | head -5 >&2  # the reason, once, not every lock retry
    exit 1
done
