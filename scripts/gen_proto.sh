#!/usr/bin/env bash
# Regenerate avatarkit/proto/*_pb2.py from the .proto files (dev time only; the generated
# code is committed). protoc comes from grpcio-tools in a throwaway venv so the project's
# .venv keeps its own protobuf runtime. After regenerating, keep the `protobuf>=` lower
# bound in pyproject.toml at (or above) the "Protobuf Python Version" printed in the header.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${PROTOC_VENV:-/tmp/avatarkit-protoc-venv}
[ -x "$TOOLS/bin/python" ] || python3 -m venv "$TOOLS"
"$TOOLS/bin/python" -c "import grpc_tools" 2>/dev/null || "$TOOLS/bin/pip" install -q grpcio-tools
# Paths are relative to the repository root, so the descriptor's file name
# ("avatarkit/proto/wire.proto") cannot collide with the public SDK's "message.proto".
"$TOOLS/bin/python" -m grpc_tools.protoc -I . --python_out=. --pyi_out=. avatarkit/proto/*.proto
grep -h "Protobuf Python Version" avatarkit/proto/*_pb2.py
