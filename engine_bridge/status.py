"""The one table from typed errors (the runtime's and the bridge's) to gRPC status codes.

Used by the error interceptor for unary and streaming calls and by `Play` for per-command answers, so a
given failure reads the same whichever way it was asked. Errors not in the table are bugs: they map to
INTERNAL with a short reference, and the traceback goes to the log under that reference.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import grpc

from engine_bridge import errors as bridge
from runtime import errors as rt

log = logging.getLogger(__name__)
MAX_MESSAGE_CHARS = 1000  # status messages travel in trailers; keep them well under header limits
MAX_WORDS = 64

_TABLE: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (rt.InvalidRequestError, grpc.StatusCode.INVALID_ARGUMENT),  # prompts, unknown words, lengths, seed
    (bridge.BadRequestError, grpc.StatusCode.INVALID_ARGUMENT),  # fields, scripts, events, parameters
    (bridge.SessionNotFoundError, grpc.StatusCode.NOT_FOUND),
    (bridge.AdmissionError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (bridge.QueueFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (rt.CapacityError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (bridge.AuthError, grpc.StatusCode.UNAUTHENTICATED),
    (bridge.PreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (rt.SessionClosedError, grpc.StatusCode.FAILED_PRECONDITION),
    (bridge.CloseTimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (bridge.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (rt.BackendUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (rt.ComponentUnavailableError, grpc.StatusCode.UNAVAILABLE),
)


@dataclass(frozen=True)
class Status:
    code: grpc.StatusCode
    message: str
    unknown_words: tuple[str, ...] = ()
    expected: bool = True  # False: no table entry matched, i.e. a bug (INTERNAL)

    @property
    def number(self) -> int:
        """The google.rpc.Code value (what CommandResult.code and ShotEvent.error_code carry)."""
        return self.code.value[0]


def classify(exc: BaseException) -> Status:
    for kind, code in _TABLE:
        if isinstance(exc, kind):
            words = tuple(getattr(exc, "words", ())[:MAX_WORDS])
            return Status(code, _clip(str(exc) or kind.__name__), words)
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected error (ref %s)", ref, exc_info=exc, extra={"ref": ref})
    return Status(grpc.StatusCode.INTERNAL, f"internal error; the server log has the details (ref {ref})",
                  expected=False)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 3] + "..."
