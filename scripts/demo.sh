#!/usr/bin/env bash
# The README's main command: set up, then run the demo on the embedded default
# (local Motion Server on loopback, bundled avatar, bundled speech).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/avatarkit demo "$@"
