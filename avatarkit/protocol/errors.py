"""How errors travel on the wire, phrased so the public Spatius SDK classifies them.

The public SDK classifies a server error by its numeric code first (``3`` is always
invalidRequest, ``4002`` sessionDurationExceeded, ...) and otherwise by phrases in its
text ("invalid session token", "no audio input for", ...). :data:`WIRE_ERRORS` is the
single table of what the server sends for each :class:`ErrorCode`; :func:`classify`
is the client side, reproducing the SDK's rules (plus a few finer codes of ours that
the SDK reports as invalidRequest / serverError / connectionClosed).
"""

from __future__ import annotations

from typing import NamedTuple

from avatarkit.errors import ErrorCode


class WireError(NamedTuple):
    code: int  # ServerError.code, or the HTTP status of a refused request
    phrase: str  # leads the message; the SDK matches on it


WIRE_ERRORS: dict[str, WireError] = {  # keyed by ErrorCode, a str: any code looks up
    ErrorCode.SESSION_TOKEN_INVALID: WireError(400, "invalid session token"),
    ErrorCode.SESSION_TOKEN_EXPIRED: WireError(401, "session token expired"),
    ErrorCode.APP_ID_MISMATCH: WireError(400, "app id mismatch"),
    ErrorCode.APP_ID_UNRECOGNIZED: WireError(404, "app id unrecognized"),
    ErrorCode.AVATAR_NOT_FOUND: WireError(404, "avatar not found"),
    ErrorCode.UNSUPPORTED_SAMPLE_RATE: WireError(400, "unsupported sample rate"),
    ErrorCode.IDLE_TIMEOUT: WireError(408, "no audio input for"),
    ErrorCode.SESSION_DURATION_EXCEEDED: WireError(4002, "maximum session duration reached"),
    ErrorCode.EGRESS_UNAVAILABLE: WireError(14, "egress client is not configured on server"),
    ErrorCode.PROTOCOL_ERROR: WireError(400, "unexpected message type"),
    # Code 3 is invalidRequest for the public SDK whatever the text; our client is finer.
    ErrorCode.INVALID_REQUEST: WireError(3, "invalid request"),
    ErrorCode.UNSUPPORTED_AUDIO_FORMAT: WireError(3, "unsupported audio format"),
    ErrorCode.MESSAGE_TOO_LARGE: WireError(3, "message too large"),
    ErrorCode.INVALID_AUDIO: WireError(3, "invalid audio"),
    ErrorCode.RATE_LIMITED: WireError(3, "rate limited"),
    # The public SDK reports these as serverError on the websocket (no phrase of its own
    # matches); a refused upgrade's 429 it reads as invalidRequest (any other 4xx).
    ErrorCode.SLOW_CONSUMER: WireError(429, "slow consumer"),
    ErrorCode.CONCURRENT_LIMIT_EXCEEDED: WireError(429, "concurrent limit exceeded"),
    ErrorCode.SERVER_SHUTTING_DOWN: WireError(503, "server shutting down"),
    ErrorCode.SERVER_ERROR: WireError(500, "internal server error"),
    # serverError for the public SDK; our client reads the phrase (an install without weights).
    ErrorCode.MOTION_MODEL_UNAVAILABLE: WireError(500, "motion model unavailable"),
}

# Websocket close codes beyond the standard ones.
CLOSE_TOKEN_EXPIRED = 4010  # the session token expired on an open connection
CLOSE_SLOW_CONSUMER = 4008  # the client did not read animation fast enough

_CLOSE_CODES = {
    CLOSE_TOKEN_EXPIRED: ErrorCode.SESSION_TOKEN_EXPIRED,
    CLOSE_SLOW_CONSUMER: ErrorCode.SLOW_CONSUMER,
    1009: ErrorCode.MESSAGE_TOO_LARGE,
    1002: ErrorCode.PROTOCOL_ERROR,
    1003: ErrorCode.PROTOCOL_ERROR,
    1007: ErrorCode.PROTOCOL_ERROR,
    1011: ErrorCode.SERVER_ERROR,
}


def wire_error(code: ErrorCode | str, detail: str = "") -> tuple[int, str]:
    """``(numeric code, message)`` to send for ``code``.

    The message is ``"<phrase>: <detail>"``, or ``detail`` alone when it already holds the
    phrase (e.g. "no audio input for 60 s").
    """
    wire = WIRE_ERRORS.get(code, WIRE_ERRORS[ErrorCode.SERVER_ERROR])
    if not detail:
        return wire.code, wire.phrase
    return wire.code, detail if wire.phrase in detail.lower() else f"{wire.phrase}: {detail}"


# Phrases in the order the public SDK tests them (first match wins), then ours.
_PHRASES: tuple[tuple[tuple[str, ...], ErrorCode], ...] = (
    (("invalid session token", "empty token"), ErrorCode.SESSION_TOKEN_INVALID),
    (("token is expired", "session token expired"), ErrorCode.SESSION_TOKEN_EXPIRED),
    (("app id mismatch",), ErrorCode.APP_ID_MISMATCH),
    (("appidunrecognized", "app id unrecognized"), ErrorCode.APP_ID_UNRECOGNIZED),
    (("avatar not found",), ErrorCode.AVATAR_NOT_FOUND),
    (("unsupported sample rate",), ErrorCode.UNSUPPORTED_SAMPLE_RATE),
    (("livekit silence timeout", "no audio input for"), ErrorCode.IDLE_TIMEOUT),
    (("livekit_egress", "agora_egress", "missing livekit credentials", "unauthorized"),
     ErrorCode.INVALID_EGRESS_CONFIG),
    (("egress client is not configured on server", "failed to create egress connection"),
     ErrorCode.EGRESS_UNAVAILABLE),
    (("driven server returned non-200", "driven server request failed"), ErrorCode.SERVER_ERROR),
    (("expected clientconfiguresession message", "clientconfiguresession message is nil",
      "unexpected message type", "failed to unmarshal initial message",
      "expected binary protobuf message", "invalid protobuf payload"), ErrorCode.PROTOCOL_ERROR),
    (("slow consumer",), ErrorCode.SLOW_CONSUMER),
    (("concurrent limit exceeded",), ErrorCode.CONCURRENT_LIMIT_EXCEEDED),
    (("server shutting down",), ErrorCode.SERVER_SHUTTING_DOWN),
    (("motion model unavailable",), ErrorCode.MOTION_MODEL_UNAVAILABLE),
)  # fmt: skip

_INVALID_ARGUMENT_REFINED = (
    ("unsupported audio format", ErrorCode.UNSUPPORTED_AUDIO_FORMAT),
    ("message too large", ErrorCode.MESSAGE_TOO_LARGE),
    ("invalid audio", ErrorCode.INVALID_AUDIO),
    ("rate limited", ErrorCode.RATE_LIMITED),
)


def classify(
    code: int | str | None,
    text: str = "",
    *,
    http_status: int | None = None,
    upgrade: bool = False,
) -> ErrorCode:
    """The :class:`ErrorCode` of a server error, by the public SDK's rules.

    ``code``: ``ServerError.code`` or the JSON error ``code``; ``text``: message/title/
    detail; ``http_status``: status of a refused HTTP request or websocket upgrade
    (``upgrade=True`` for the latter, where a bare 400 means an invalid token).
    """
    server_code = "" if code is None else str(code)
    lowered = f"{server_code} | {text}".lower()
    if server_code in ("3", "INVALID_ARGUMENT"):
        if any(word in lowered for word in ("livekit", "agora", "egress")):
            return ErrorCode.INVALID_EGRESS_CONFIG
        for phrase, refined in _INVALID_ARGUMENT_REFINED:
            if phrase in lowered:
                return refined
        return ErrorCode.INVALID_REQUEST
    if server_code in ("16", "UNAUTHENTICATED"):
        return ErrorCode.INVALID_EGRESS_CONFIG
    if server_code in ("14", "UNAVAILABLE"):
        return ErrorCode.EGRESS_UNAVAILABLE
    if server_code == "4001":
        return ErrorCode.BILLING_REQUIRED
    if server_code == "4002":
        return ErrorCode.SESSION_DURATION_EXCEEDED
    if "credits exhausted" in lowered:
        return ErrorCode.BILLING_REQUIRED  # the SDK's creditsExhausted; we have no such code
    if "session time limit reached" in lowered or "maximum session duration" in lowered:
        return ErrorCode.SESSION_DURATION_EXCEEDED
    if "session denied" in lowered or http_status == 402:
        return ErrorCode.BILLING_REQUIRED
    for phrases, error_code in _PHRASES:
        if any(p in lowered for p in phrases):
            return error_code
    return _classify_status(http_status, upgrade)


def _classify_status(status: int | None, upgrade: bool) -> ErrorCode:
    if status is None:
        return ErrorCode.SERVER_ERROR
    if status == 401:
        return ErrorCode.SESSION_TOKEN_EXPIRED
    if status == 404:
        return ErrorCode.APP_ID_UNRECOGNIZED
    if status == 402:
        return ErrorCode.BILLING_REQUIRED
    if status == 400 and upgrade:
        return ErrorCode.SESSION_TOKEN_INVALID
    if 400 <= status < 500:
        return ErrorCode.INVALID_REQUEST
    return ErrorCode.SERVER_ERROR if status >= 500 else ErrorCode.UNKNOWN


def classify_close(code: int | None) -> ErrorCode | None:
    """The :class:`ErrorCode` of a websocket close, or ``None`` for a normal close."""
    if code in _CLOSE_CODES:
        return _CLOSE_CODES[code]
    if code in (None, 1000, 1001):
        return None
    return ErrorCode.CONNECTION_CLOSED
