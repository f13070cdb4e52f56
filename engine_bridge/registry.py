"""The server's sessions: admission control, lookup, idle expiry, and usage figures.

Admission counts sessions being opened as well as open ones, so two concurrent opens cannot both take
the last slot. A session costs `engine.info.session_cache_bytes`; the budget (0 = none) and the session
count are checked before the story allocates anything. Owns the reaper thread that closes idle sessions.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine_bridge.director import Director, Script, load_script, parse_script
from engine_bridge.errors import AdmissionError, SessionNotFoundError
from engine_bridge.session import Session, SessionSettings
from engine_bridge.wire import pb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Server limits (GetInfo reports them; the .proto documents each)."""

    max_sessions: int = 8
    cache_budget_bytes: int = 0  # 0: no budget beyond max_sessions
    max_shots_per_request: int = 8
    max_queued_shots: int = 32
    max_buffer_frames: int = 256
    default_buffer_frames: int = 32
    max_message_bytes: int = 256 * 1024
    idle_timeout_s: float = 300.0
    max_script_bytes: int = 64 * 1024
    max_param_chars: int = 200
    close_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or not 1 <= self.default_buffer_frames <= self.max_buffer_frames:
            raise ValueError("need max_sessions >= 1 and 1 <= default_buffer_frames <= max_buffer_frames")


class SessionRegistry:
    def __init__(self, engine, limits: Limits, server_script: Script | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.engine, self.limits, self.server_script = engine, limits, server_script
        info = engine.info
        self.session_bytes, self.fps, self.max_chunks = info.session_cache_bytes, info.fps, info.max_chunks_per_shot
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._opening = 0
        self._retired = [0, 0, 0]  # chunks, frames sent, frames dropped of closed sessions
        self._stop_reaper = threading.Event()
        self._reaper: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def open(self, settings: SessionSettings, script_text: str = "") -> Session:
        scripts = [self.parse_script(script_text, "session script")] if script_text else []
        if self.server_script is not None:
            scripts.append(self.server_script)
        self._reserve()
        session = None
        try:
            story = self.engine.open_story(seed=settings.seed, global_caption=settings.global_caption,
                                           prompt_mode=settings.prompt_mode)
            session = Session(session_id=uuid.uuid4().hex, story=story, settings=settings, fps=self.fps,
                              director=Director(scripts, max_param_chars=self.limits.max_param_chars),
                              max_queued=self.limits.max_queued_shots, clock=self._clock)
        finally:
            with self._lock:
                self._opening -= 1
                if session is not None:
                    self._sessions[session.id] = session
        log.info("session opened", extra={"session": session.id, "seed": settings.seed,
                                           "pacing": pb.Pacing.Name(settings.pacing),
                                           "format": pb.FrameFormat.Name(settings.frame_format)})
        return session

    def parse_script(self, text: str, source: str) -> Script:
        return parse_script(text, source=source, **self._script_limits())

    def load_script(self, path: str | Path) -> Script:
        return load_script(path, **self._script_limits())

    def _script_limits(self) -> dict:
        return {"max_chunks": self.max_chunks, "max_shots": self.limits.max_shots_per_request,
                "max_bytes": self.limits.max_script_bytes, "check_prompt": self.engine.check_prompt}

    def _reserve(self) -> None:
        lim = self.limits
        with self._lock:
            n = len(self._sessions) + self._opening
            if n >= lim.max_sessions:
                raise AdmissionError(f"session limit reached: {n} of {lim.max_sessions} sessions are open; "
                                     "close one or try again later")
            if lim.cache_budget_bytes and (n + 1) * self.session_bytes > lim.cache_budget_bytes:
                raise AdmissionError(
                    f"cache memory budget reached: {n} sessions hold {_mib(n * self.session_bytes)} of "
                    f"{_mib(lim.cache_budget_bytes)}; one more needs {_mib(self.session_bytes)}")
            self._opening += 1

    def get(self, session_id: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFoundError(f"no open session {session_id[:64]!r} (closed, expired or never opened)")
        session.touch()
        return session

    def close(self, session_id: str, reason: int, timeout: float | None = None) -> tuple[int, int]:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            raise SessionNotFoundError(f"no open session {session_id[:64]!r} (closed, expired or never opened)")
        try:
            return session.close(reason, self.limits.close_timeout_s if timeout is None else timeout)
        finally:
            with self._lock:
                for i, n in enumerate((session.chunks_generated, session.outbox.sent, session.outbox.dropped)):
                    self._retired[i] += n
            log.info("session closed", extra={"session": session_id, "reason": pb.CloseReason.Name(reason)})

    def close_all(self, reason: int) -> None:
        with self._lock:
            ids = list(self._sessions)
        for session_id in ids:
            try:
                self.close(session_id, reason)
            except Exception:  # one stuck session must not keep the others open at shutdown
                log.exception("closing session failed", extra={"session": session_id})

    def expire_idle(self) -> list[str]:
        now = self._clock()
        with self._lock:
            idle = [s.id for s in self._sessions.values() if s.idle_for(now) > self.limits.idle_timeout_s]
        for session_id in idle:
            try:
                self.close(session_id, pb.CLOSE_REASON_IDLE)
            except SessionNotFoundError:
                pass  # closed meanwhile by its client
        return idle

    # -- reaper -------------------------------------------------------------------------------------
    def start_reaper(self) -> None:
        interval = min(5.0, max(0.05, self.limits.idle_timeout_s / 4))

        def reap() -> None:
            while not self._stop_reaper.wait(interval):
                self.expire_idle()

        self._reaper = threading.Thread(target=reap, name="session-reaper", daemon=True)
        self._reaper.start()

    def stop_reaper(self) -> None:
        self._stop_reaper.set()
        if self._reaper is not None:
            self._reaper.join()

    # -- figures ------------------------------------------------------------------------------------
    def sessions(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def usage(self) -> pb.Usage:
        with self._lock:
            live = list(self._sessions.values())
            chunks, sent, dropped = self._retired
        return pb.Usage(
            open_sessions=len(live), busy_sessions=sum(s.busy for s in live),
            cache_bytes_in_use=len(live) * self.session_bytes,
            chunks_generated=chunks + sum(s.chunks_generated for s in live),
            frames_sent=sent + sum(s.outbox.sent for s in live),
            frames_dropped=dropped + sum(s.outbox.dropped for s in live))


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
