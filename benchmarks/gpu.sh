#!/usr/bin/env bash
# The GPU run (issue 15.8): the render and server benchmarks on a machine with a real GPU,
# so the figures can be taken the first time one is lent. On a machine without one it
# says "no GPU" and exits 0 (the CPU figures come from the scripts themselves).
#
#   bash benchmarks/gpu.sh            # everything (about 10 minutes)
#   QUICK=1 bash benchmarks/gpu.sh    # fewer frames and rows (about 3 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

# The GL renderer EGL gives this process: a software rasteriser means no GPU here.
renderer=$("$PY" - <<'PYEOF'
import moderngl
try:
    ctx = moderngl.create_context(standalone=True, backend="egl", require=330)
except Exception as exc:  # no EGL at all
    print(f"none ({exc})")
else:
    print(ctx.info["GL_RENDERER"])
PYEOF
)
echo "GL renderer: $renderer"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
case "${renderer,,}" in
    none*|*llvmpipe*|*softpipe*|*swiftshader*|*lavapipe*)
        echo "no GPU: EGL renders with '$renderer'; nothing to measure here"
        exit 0
        ;;
esac

frames=100
counts=1,8,16,32,64
offline_seconds=10
if [ -n "${QUICK:-}" ]; then
    frames=30
    counts=1,16,64
    offline_seconds=5
fi

echo
echo "== render: N avatars at 1920x1080, engine vs bare draw (bar: 64 avatars >= 60 fps)"
"$PY" benchmarks/render.py --size 1920x1080 --counts "$counts" --frames "$frames" --samples 0,4
echo
echo "== offline render (avatarkit render) vs a bare draw + encode floor"
"$PY" benchmarks/render.py --offline --sizes 1280x720,1920x1080 --qualities medium,high \
    --seconds "$offline_seconds"
echo
echo "== Motion Server (CPU: first frame, bytes on the wire, sessions per core)"
if [ -n "${QUICK:-}" ]; then
    "$PY" benchmarks/server.py --quick
else
    "$PY" benchmarks/server.py
fi
