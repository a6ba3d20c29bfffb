"""How the Direct transport reads a server's "no": refused upgrades, error messages and
close frames, each as one ``AvatarKitError`` with a stable code, and which of them no
reconnect can fix. Pure functions: nothing here touches a socket or a thread."""

from __future__ import annotations

import json

from websockets.exceptions import ConnectionClosed, InvalidStatus

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.protocol import classify, classify_close, pb

TOKEN_ERRORS = (ErrorCode.SESSION_TOKEN_EXPIRED, ErrorCode.SESSION_TOKEN_INVALID)
# Server verdicts no retry can fix: stop and report instead of reconnecting.
FATAL_ERRORS = (
    ErrorCode.AVATAR_NOT_FOUND,
    ErrorCode.APP_ID_MISMATCH,
    ErrorCode.APP_ID_UNRECOGNIZED,
    ErrorCode.UNSUPPORTED_SAMPLE_RATE,
    ErrorCode.BILLING_REQUIRED,
)


def server_error(err: pb.ServerError) -> AvatarKitError:
    """A ``SERVER_ERROR`` message (its ``server_error`` field) as a coded error."""
    return AvatarKitError(
        classify(err.code, err.message), err.message or f"server error {err.code}"
    )


def closed_error(exc: ConnectionClosed) -> AvatarKitError | None:
    """The close frame's verdict, or None for a normal close (nothing to report)."""
    code = exc.rcvd.code if exc.rcvd is not None else 1006
    reason = exc.rcvd.reason if exc.rcvd is not None else "connection lost"
    error = classify_close(code)
    return AvatarKitError(error, f"connection closed ({code}): {reason}") if error else None


def refusal(exc: InvalidStatus) -> AvatarKitError:
    """A refused websocket upgrade: the status and the JSON error body, classified."""
    status = exc.response.status_code
    body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
    code, text = None, body
    try:
        parsed = json.loads(body)
        # {"errors": [...]}, or the bare {"message": ...} of an invalid-token refusal
        first = (parsed.get("errors") or [parsed])[0]
        code = first.get("code")
        text = " ".join(str(first.get(k, "")) for k in ("title", "detail", "message"))
    except (ValueError, AttributeError):
        pass
    return AvatarKitError(
        classify(code, text, http_status=status, upgrade=True),
        f"connection refused ({status}): {text.strip()}",
    )
