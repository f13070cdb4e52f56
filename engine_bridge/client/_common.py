"""What the sync and asyncio clients share: request building, errors, and the stream's items.

No I/O happens here. Imports only grpc, protobuf and the generated stubs (never torch or the runtime).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import grpc

from engine_bridge.wire import TERMINAL_PHASES, UNKNOWN_WORDS_KEY, pb

DEFAULT_QUEUE_FRAMES = 64
# A fixed 256 KiB HTTP/2 window per stream (no BDP growth): what the game has not read waits in the
# client's bounded queue and the server's playout buffer, where the pacing policy applies, instead of
# piling up in transport buffers (which grow to megabytes on a fast link and would add seconds of lag).
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 64 * 2**20), ("grpc.http2.bdp_probe", 0),
                   ("grpc.http2.lookahead_bytes", 256 * 1024))
_FORMATS = {"rgb8": pb.FRAME_FORMAT_RGB8, "png": pb.FRAME_FORMAT_PNG, "jpeg": pb.FRAME_FORMAT_JPEG}
_PACINGS = {"real_time": pb.PACING_REAL_TIME, "asap": pb.PACING_AS_FAST_AS_POSSIBLE,
            "as_fast_as_possible": pb.PACING_AS_FAST_AS_POSSIBLE}
_PROMPT_MODES = {"strict": pb.PROMPT_MODE_STRICT, "lenient": pb.PROMPT_MODE_LENIENT}


# ---------------------------------------------------------------------------------------------------
# Errors

class ShotStreamRpcError(Exception):
    """A call failed; `code` is the gRPC status code, `unknown_words` lists refused prompt words."""

    def __init__(self, code: grpc.StatusCode, details: str, unknown_words: tuple[str, ...] = ()):
        self.code, self.details, self.unknown_words = code, details, unknown_words
        super().__init__(f"{code.name}: {details}")


class InvalidArgument(ShotStreamRpcError):
    """Bad prompt (empty, too long, unknown words), bad length, unknown event, malformed script."""


class NotFound(ShotStreamRpcError):
    """The session is closed, expired, or was never opened."""


class ResourceExhausted(ShotStreamRpcError):
    """Session count, cache memory, queue length or message size limit."""


class Unauthenticated(ShotStreamRpcError):
    """The server needs a token (pass token=...)."""


class FailedPrecondition(ShotStreamRpcError):
    """The session already has a frame stream, has no director script, or failed earlier."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument, grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted, grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
}


def translate(error: grpc.RpcError) -> ShotStreamRpcError:
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    words: tuple[str, ...] = ()
    for key, value in error.trailing_metadata() or ():
        if key == UNKNOWN_WORDS_KEY:
            words = tuple(value.decode("utf-8", "replace").split("\n"))
    return _BY_CODE.get(code, ShotStreamRpcError)(code, error.details() or "", words)


# ---------------------------------------------------------------------------------------------------
# Requests

def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def open_request(*, seed: int, caption: str, frame_format: str | int, pacing: str | int, buffer_frames: int,
                 jpeg_quality: int, script: str, prompt_mode: str | int | None = None) -> pb.OpenSessionRequest:
    """`prompt_mode`: "strict", "lenient", or None for the server's default."""
    mode = pb.PROMPT_MODE_UNSPECIFIED if prompt_mode is None else _enum(prompt_mode, _PROMPT_MODES)
    return pb.OpenSessionRequest(seed=seed, global_caption=caption, frame_format=_enum(frame_format, _FORMATS),
                                 pacing=_enum(pacing, _PACINGS), buffer_frames=buffer_frames,
                                 jpeg_quality=jpeg_quality, director_script=script, prompt_mode=mode)


def submit_request(session_id: str, shots: Sequence[tuple[str, int] | str], cut: bool) -> pb.SubmitShotRequest:
    specs = [pb.ShotSpec(prompt=s) if isinstance(s, str) else pb.ShotSpec(prompt=s[0], chunks=s[1]) for s in shots]
    return pb.SubmitShotRequest(session_id=session_id, shots=specs,
                                policy=pb.SHOT_POLICY_CUT if cut else pb.SHOT_POLICY_QUEUE)


def trigger_request(session_id: str, event: str, params: Mapping[str, object]) -> pb.TriggerEventRequest:
    return pb.TriggerEventRequest(session_id=session_id, event=event, params={k: str(v) for k, v in params.items()})


def _enum(value: str | int, names: dict[str, int]) -> int:
    if isinstance(value, int):
        return value
    try:
        return names[value.lower()]
    except KeyError:
        raise ValueError(f"{value!r} is not one of {', '.join(names)}") from None


# ---------------------------------------------------------------------------------------------------
# Answers and stream items

@dataclass(frozen=True)
class Triggered:
    shot_ids: tuple[int, ...]
    suppressed: bool  # the event is in its cool-down; nothing was queued
    cooldown_remaining_s: float
    interrupt: bool
    dropped: tuple[tuple[str, ...], ...] = ()  # per shot: words a lenient session left out


def triggered(response: pb.TriggerEventResponse) -> Triggered:
    return Triggered(tuple(response.shot_ids), response.suppressed, response.cooldown_remaining_ms / 1000,
                     response.policy == pb.SHOT_POLICY_CUT, tuple(tuple(d.words) for d in response.dropped))


class StreamEnd:
    """Queued by a receiver when its stream ends: cleanly (`error` None) or with an error."""

    def __init__(self, error: ShotStreamRpcError | None = None):
        self.error = error


class Inbox:
    """What a session's stream has delivered so far: the latest event per shot, and how it ended."""

    def __init__(self):
        self.shot_events: dict[int, pb.ShotEvent] = {}
        self.dropped_words: dict[int, tuple[str, ...]] = {}  # shot id -> words a lenient session left out
        self.end: StreamEnd | None = None

    def queued(self, shot_ids, dropped) -> list[int]:
        """Records the dropped words of an answer's shots (SubmitShotResponse, TriggerEventResponse)."""
        for shot_id, words in zip(shot_ids, dropped):
            if words.words:
                self.dropped_words[shot_id] = tuple(words.words)
        return list(shot_ids)

    def accept(self, item) -> bool:
        """Records `item`; False when it is the stream's end (nothing to hand to the game)."""
        if isinstance(item, StreamEnd):
            self.end = item
            return False
        if isinstance(item, pb.ShotEvent):
            self.shot_events[item.shot_id] = item
        return True

    def raise_if_failed(self) -> None:
        if self.end is not None and self.end.error is not None:
            raise self.end.error


class ShotCollector:
    """Gathers one shot's frames from a run of updates, until its terminal event or a deadline."""

    def __init__(self, shot_id: int, timeout: float):
        self.shot_id, self.timeout = shot_id, timeout
        self.deadline = time.monotonic() + timeout
        self.frames: list[pb.Frame] = []

    def feed(self, item) -> tuple[list[pb.Frame], pb.ShotEvent] | None:
        """The shot's (frames, final event) once `item` ends it; None before. Raises at the deadline."""
        if isinstance(item, pb.Frame) and item.shot_id == self.shot_id:
            self.frames.append(item)
        elif is_terminal(item, self.shot_id):
            return self.frames, item
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"shot {self.shot_id} did not end within {self.timeout} s")
        return None

    def stream_ended(self) -> ConnectionError:
        return ConnectionError(f"the session's frame stream ended before shot {self.shot_id} did")


def unwrap(update: pb.StoryUpdate):
    """The Frame or ShotEvent inside an update, or None for `closed` (the stream's end)."""
    kind = update.WhichOneof("update")
    return None if kind == "closed" else getattr(update, kind)


def is_terminal(item, shot_id: int) -> bool:
    return isinstance(item, pb.ShotEvent) and item.shot_id == shot_id and item.phase in TERMINAL_PHASES


def frames_sha256(frames: Iterable[pb.Frame]) -> str:
    """Hex SHA-256 over RGB8 frames' bytes, as ShotEvent.frames_sha256 (send frame_format='rgb8')."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame.data)
    return digest.hexdigest()


def to_array(frame: pb.Frame):
    """The frame as a (height, width, 3) uint8 numpy array (numpy, and Pillow for PNG/JPEG, on demand)."""
    import numpy as np

    if frame.format in (pb.FRAME_FORMAT_RGB8, pb.FRAME_FORMAT_UNSPECIFIED):
        return np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width, 3)
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(frame.data)).convert("RGB"))
