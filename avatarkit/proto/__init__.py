"""Generated protobuf code of the wire protocol (``wire.proto``; see docs/protocol.md)."""
