"""Typed errors of the engine bridge (sessions, director, requests). Nothing here imports gRPC.

Each class means one thing to a client; `engine_bridge.status` maps every class, and the runtime's own
errors, to exactly one gRPC status code.
"""
from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class BadRequestError(BridgeError):
    """A request field is missing, malformed or out of range (INVALID_ARGUMENT)."""


class ScriptError(BadRequestError):
    """A director script is malformed; `line` is the 1-based line it points at (0: whole script)."""

    def __init__(self, message: str, line: int = 0, source: str = "<script>"):
        self.line, self.source = line, source
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}: {message}")


class UnknownEventError(BadRequestError):
    """The event is in neither the session's script nor the server's."""


class SessionNotFoundError(BridgeError):
    """No open session has this id (NOT_FOUND)."""


class AdmissionError(BridgeError):
    """Opening one more session would pass the session count or cache memory limit (RESOURCE_EXHAUSTED)."""


class QueueFullError(BridgeError):
    """The session's shot queue is full (RESOURCE_EXHAUSTED)."""


class PreconditionError(BridgeError):
    """The session is not in a state that allows this call (FAILED_PRECONDITION)."""


class AuthError(BridgeError):
    """The call lacks the server's token (UNAUTHENTICATED)."""


class UnavailableError(BridgeError):
    """The session cannot be served now: its node was lost and no other has room, or its front door is
    stopping (UNAVAILABLE; the client may try again, through another front door)."""


class CloseTimeoutError(BridgeError):
    """A session's worker did not stop within the time allowed (DEADLINE_EXCEEDED)."""
