#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian + Python 3.11 machine: system packages, venv, pip.
# Optional pieces (PortAudio, Xvfb, espeak-ng) are installed when possible; without them
# the runtime falls back (null audio device, headless EGL) and the related tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIRED_DEBS=(libegl1 libgl1-mesa-dri libegl-mesa0)
OPTIONAL_DEBS=(portaudio19-dev xvfb espeak-ng libespeak-ng1 sox nginx
              pulseaudio pulseaudio-utils libasound2-plugins libopus0 redis-server
              assimp-testmodels)  # Khronos glTF samples (SimpleSkin, ...): tests/engine/test_skinning.py

missing_debs() { for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done; }
apt_install() { bash scripts/apt_get.sh install "$@"; }  # waits for a held apt lock

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    want=$(missing_debs "${REQUIRED_DEBS[@]}" "${OPTIONAL_DEBS[@]}")
    if [ -n "$want" ]; then
        echo "[setup] apt-get install:" $want
        # one bounded wait for a held apt lock across all the calls below
        export APT_LOCK_DEADLINE=$(($(date +%s) + ${APT_LOCK_WAIT:-300}))
        bash scripts/apt_get.sh update || echo "[setup] warning: apt-get update failed; trying the cached lists"
        # apt installs all or nothing: one optional package missing from this release's
        # archive must not cost the required ones, so on failure go one package at a time.
        # shellcheck disable=SC2086
        if ! apt_install $want 2>/dev/null; then
            for p in $want; do
                apt_install "$p" 2>/dev/null || echo "[setup] warning: could not install $p"
            done
        fi
    fi
fi
still=$(missing_debs "${REQUIRED_DEBS[@]}")
[ -z "$still" ] || echo "[setup] warning: missing $still: headless EGL rendering may not work"

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true

extras="test,bench"
if dpkg -s portaudio19-dev >/dev/null 2>&1; then extras="$extras,audio"; fi
echo "[setup] pip install -e .[$extras]"
# pip's and setuptools' chatter (the editable-install banner, index notices) goes to a
# log that is shown only when the install fails.
pip_log=.venv/pip-install.log
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]" >"$pip_log" 2>&1; then
    grep -v "^WARNING: Location" "$pip_log" | tail -n 30 >&2
    echo "[setup] error: pip install failed (full log: $pip_log)" >&2
    exit 1
fi
# Bytecode for the project's own modules, as a wheel install would have: an editable
# install has none, and with PYTHONDONTWRITEBYTECODE set every command would compile
# about 225 modules again (0.2 s of each `avatarkit render`).
.venv/bin/python -m compileall -q avatarkit engine scenes >/dev/null

# The pinned spatius sdist carries the vendor's own e2e suite (tests/server/test_vendor_e2e.py
# runs it against our server); the version is the one pinned in pyproject.toml.
spatius_pin=$(grep -o 'spatius\[opus\]==[0-9][0-9.]*' pyproject.toml | head -n1)
if [ -n "$spatius_pin" ] && ! ls .cache/sdist/spatius-"${spatius_pin##*==}".tar.gz >/dev/null 2>&1; then
    echo "[setup] pip download --no-binary :all: $spatius_pin"
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
        "$spatius_pin" -d .cache/sdist >.venv/pip-download.log 2>&1 \
        || echo "[setup] warning: could not download the $spatius_pin sdist (.venv/pip-download.log): its e2e suite will skip"
fi

# gltfpack (meshoptimizer's glTF packer, npm) makes the meshopt/quantized variants of a
# test avatar that tests/avatars/test_compressed_variants.py compares with the original.
gltfpack_pin=gltfpack@1.3.0
if command -v npm >/dev/null 2>&1 && [ ! -x .cache/npm/node_modules/.bin/gltfpack ]; then
    echo "[setup] npm install $gltfpack_pin"
    npm install --prefix .cache/npm --no-audit --no-fund --silent "$gltfpack_pin" \
        >.venv/npm-install.log 2>&1 \
        || echo "[setup] warning: could not install $gltfpack_pin (.venv/npm-install.log): its variants will skip"
fi
echo "[setup] ready: .venv"
