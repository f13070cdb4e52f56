"""The Storyteller servicer: translates between the wire messages and sessions, nothing more.

Errors are raised as typed exceptions and become status codes in the interceptor (`interceptors`); the
only place this module maps an error itself is a Play command's answer, through the same table.
A frame stream (WatchFrames or Play) attaches to its session; when the RPC ends for any reason the
`context.add_callback` hook detaches it, which stops that session's work within one chunk.
"""
from __future__ import annotations

import logging
import threading
from typing import Iterator

from engine_bridge import __version__, frames
from engine_bridge.errors import BadRequestError, SessionNotFoundError
from engine_bridge.outbox import CLOSED
from engine_bridge.registry import SessionRegistry
from engine_bridge.session import Queued, Session, SessionSettings, ShotRequest
from engine_bridge.status import classify
from engine_bridge.wire import pb, rpc

log = logging.getLogger(__name__)
POLL_S = 0.2  # how often an idle stream checks that its client is still there
_PACINGS = (pb.PACING_REAL_TIME, pb.PACING_AS_FAST_AS_POSSIBLE)
_POLICIES = (pb.SHOT_POLICY_UNSPECIFIED, pb.SHOT_POLICY_QUEUE, pb.SHOT_POLICY_CUT)
MAX_SEED = 2**63 - 1
PROMPT_MODES = {pb.PROMPT_MODE_STRICT: "strict", pb.PROMPT_MODE_LENIENT: "lenient"}
_MODE_ENUMS = {name: number for number, name in PROMPT_MODES.items()}


class StorytellerServicer(rpc.StorytellerServicer):
    def __init__(self, registry: SessionRegistry, *, available_presets: tuple[str, ...] = (),
                 auth_required: bool = False, default_prompt_mode: str = "strict"):
        self.registry, self.limits = registry, registry.limits
        self.info = registry.engine.info
        self.available_presets, self.auth_required = available_presets, auth_required
        self.default_prompt_mode = _MODE_ENUMS[default_prompt_mode]

    # -- unary --------------------------------------------------------------------------------------
    def GetInfo(self, request: pb.GetInfoRequest, context) -> pb.GetInfoResponse:
        info, lim, use = self.info, self.limits, self.registry.usage()
        server_script = self.registry.server_script
        return pb.GetInfoResponse(
            server_version=__version__, preset=info.preset, available_presets=self.available_presets,
            backend=info.backend, backend_reason=info.backend_reason, width=info.width, height=info.height,
            fps=info.fps, frames_per_shot=info.frames_per_shot, max_chunks_per_shot=info.max_chunks_per_shot,
            chunk_frames=info.chunk_frames, max_prompt_chars=info.max_prompt_chars,
            limits=pb.Limits(
                max_sessions=lim.max_sessions, cache_budget_bytes=lim.cache_budget_bytes,
                session_cache_bytes=info.session_cache_bytes, max_shots_per_request=lim.max_shots_per_request,
                max_queued_shots=lim.max_queued_shots, max_buffer_frames=lim.max_buffer_frames,
                default_buffer_frames=lim.default_buffer_frames, max_message_bytes=lim.max_message_bytes,
                idle_timeout_ms=int(lim.idle_timeout_s * 1000), max_script_bytes=lim.max_script_bytes,
                max_param_chars=lim.max_param_chars),
            usage=use, auth_required=self.auth_required,
            server_events=sorted(server_script.events) if server_script else [], model=info.model,
            vocabulary=info.vocabulary, text_len=info.text_len, default_prompt_mode=self.default_prompt_mode)

    def OpenSession(self, request: pb.OpenSessionRequest, context) -> pb.OpenSessionResponse:
        session = self.registry.open(self._settings(request), request.director_script)
        return self._opened(session)

    def CloseSession(self, request: pb.CloseSessionRequest, context) -> pb.CloseSessionResponse:
        timeout = self.limits.close_timeout_s
        if context.time_remaining() is not None:
            timeout = max(0.0, min(timeout, context.time_remaining() - 0.05))
        shots, generated = self.registry.close(request.session_id, pb.CLOSE_REASON_CLIENT, timeout)
        return pb.CloseSessionResponse(shots_done=shots, frames_generated=generated)

    def SubmitShot(self, request: pb.SubmitShotRequest, context) -> pb.SubmitShotResponse:
        session = self.registry.get(request.session_id)
        queued = self._submit(session, request.shots, request.policy)
        return pb.SubmitShotResponse(shot_ids=queued.shot_ids, queued_shots=queued.queued_shots,
                                     dropped=_dropped(queued))

    def TriggerEvent(self, request: pb.TriggerEventRequest, context) -> pb.TriggerEventResponse:
        queued = self.registry.get(request.session_id).trigger(request.event, dict(request.params))
        return pb.TriggerEventResponse(
            shot_ids=queued.shot_ids, suppressed=queued.suppressed, queued_shots=queued.queued_shots,
            cooldown_remaining_ms=int(queued.cooldown_remaining_s * 1000),
            policy=pb.SHOT_POLICY_CUT if queued.interrupt else pb.SHOT_POLICY_QUEUE, dropped=_dropped(queued))

    # -- streams ------------------------------------------------------------------------------------
    def WatchFrames(self, request: pb.WatchFramesRequest, context) -> Iterator[pb.StoryUpdate]:
        session = self.registry.get(request.session_id)
        ticket = session.attach()
        context.add_callback(lambda: session.detach(ticket))
        yield from _drain(session, ticket, context)

    def Play(self, request_iterator, context) -> Iterator[pb.StoryUpdate]:
        first = next(request_iterator, None)
        kind = first.WhichOneof("command") if first is not None else None
        if kind not in ("open", "attach"):
            raise BadRequestError(f"the first Play request must be 'open' or 'attach', got {kind or 'nothing'!r}")
        owned = kind == "open"
        session = self.registry.open(self._settings(first.open), first.open.director_script) if owned \
            else self.registry.get(first.attach.session_id)
        try:
            ticket = session.attach()
        except Exception:
            if owned:
                self.registry.close(session.id, pb.CLOSE_REASON_CLIENT)
            raise
        context.add_callback(lambda: self._play_ended(session, ticket, owned))
        yield pb.StoryUpdate(opened=self._opened(session))
        half_closed = threading.Event()
        threading.Thread(target=self._read_commands, args=(request_iterator, session, half_closed),
                         name=f"play-{session.id[:8]}", daemon=True).start()
        yield from _drain(session, ticket, context, finished=lambda: self._play_done(session, half_closed, owned))

    def _play_done(self, session: Session, half_closed: threading.Event, owned: bool) -> bool:
        """True once the client half-closed and the session has nothing left to run or send. A session
        this stream owns is closed then instead, so the stream ends after its `closed` update."""
        if not half_closed.is_set() or session.busy or session.outbox.pending:
            return False
        if owned:
            self._close_owned(session)
            return False
        return True

    def _play_ended(self, session: Session, ticket: int, owned: bool) -> None:
        session.detach(ticket)
        if owned:
            self._close_owned(session)

    def _close_owned(self, session: Session) -> None:
        try:
            self.registry.close(session.id, pb.CLOSE_REASON_CLIENT)
        except SessionNotFoundError:  # already closed by CloseSession or expiry
            log.debug("play session already closed", extra={"session": session.id})

    def _read_commands(self, requests, session: Session, half_closed: threading.Event) -> None:
        """Applies each later Play request and queues its answer; ends the stream on a protocol error."""
        try:
            for request in requests:
                session.outbox.put_reply(pb.StoryUpdate(command=self._command(session, request)))
        except Exception as exc:  # malformed bytes or a second open/attach: the stream ends with its code
            session.outbox.put_reply(exc)
        finally:
            half_closed.set()

    def _command(self, session: Session, request: pb.PlayRequest) -> pb.CommandResult:
        kind = request.WhichOneof("command")
        if kind in ("open", "attach", None):
            raise BadRequestError(f"request {request.request_id}: {kind or 'an empty command'} is not allowed "
                                  "after the first Play request")
        try:
            if kind == "submit":
                queued = self._submit(session, request.submit.shots, request.submit.policy)
            elif kind == "trigger":
                queued = session.trigger(request.trigger.event, dict(request.trigger.params))
            else:
                queued = session.cancel()
        except Exception as exc:  # a refused command is answered, and the stream goes on
            status = classify(exc)
            return pb.CommandResult(request_id=request.request_id, code=status.number, message=status.message,
                                    unknown_words=status.unknown_words)
        return pb.CommandResult(request_id=request.request_id, shot_ids=queued.shot_ids,
                                suppressed=queued.suppressed, queued_shots=queued.queued_shots,
                                cooldown_remaining_ms=int(queued.cooldown_remaining_s * 1000),
                                dropped=_dropped(queued))

    # -- translation --------------------------------------------------------------------------------
    def _settings(self, r: pb.OpenSessionRequest) -> SessionSettings:
        lim = self.limits
        frame_format = r.frame_format or pb.FRAME_FORMAT_RGB8
        pacing = r.pacing or pb.PACING_REAL_TIME
        quality = r.jpeg_quality or 90
        jpeg = frame_format == pb.FRAME_FORMAT_JPEG
        mode = r.prompt_mode or self.default_prompt_mode
        buffer_frames = r.buffer_frames or lim.default_buffer_frames
        problems = [
            (frame_format not in frames.FORMATS, f"frame_format {r.frame_format} is not a FrameFormat"),
            (pacing not in _PACINGS, f"pacing {r.pacing} is not a Pacing"),
            (jpeg and not 1 <= quality <= 100, f"jpeg_quality must be 1..100 (0 = 90), got {r.jpeg_quality}"),
            (mode not in PROMPT_MODES, f"prompt_mode {r.prompt_mode} is not a PromptMode"),
            (not 1 <= buffer_frames <= lim.max_buffer_frames,
             f"buffer_frames must be 1..{lim.max_buffer_frames} (0 = {lim.default_buffer_frames}), got {r.buffer_frames}"),
            (r.seed > MAX_SEED, f"seed must be at most 2^63 - 1, got {r.seed}"),
        ]
        for bad, message in problems:
            if bad:
                raise BadRequestError(message)
        return SessionSettings(r.seed, r.global_caption, frame_format, quality if jpeg else 90, pacing, buffer_frames,
                               PROMPT_MODES[mode])

    def _submit(self, session: Session, specs, policy: int) -> Queued:
        max_chunks, most = self.info.max_chunks_per_shot, self.limits.max_shots_per_request
        if policy not in _POLICIES:
            raise BadRequestError(f"policy {policy} is not a ShotPolicy")
        if len(specs) > most:
            raise BadRequestError(f"{len(specs)} shots in one request; at most {most}")
        shots = []
        for i, spec in enumerate(specs):
            chunks = spec.chunks or max_chunks
            if not 1 <= chunks <= max_chunks:
                raise BadRequestError(f"shots[{i}].chunks must be 1..{max_chunks} (0 = {max_chunks}), got {spec.chunks}")
            shots.append(ShotRequest(spec.prompt, chunks))
        return session.submit(shots, cut=policy == pb.SHOT_POLICY_CUT)

    def _opened(self, session: Session) -> pb.OpenSessionResponse:
        s, info = session.settings, self.info
        return pb.OpenSessionResponse(
            session_id=session.id, width=info.width, height=info.height, fps=info.fps,
            frame_format=s.frame_format, pacing=s.pacing, buffer_frames=s.buffer_frames, jpeg_quality=s.jpeg_quality,
            cache_bytes=info.session_cache_bytes, idle_timeout_ms=int(self.limits.idle_timeout_s * 1000),
            events=session.director.events, prompt_mode=_MODE_ENUMS[s.prompt_mode],
            caption_dropped_words=session.caption_dropped)


def _dropped(queued: Queued) -> list[pb.DroppedWords]:
    return [pb.DroppedWords(words=words) for words in queued.dropped]


def _drain(session: Session, ticket: int, context, finished=lambda: False) -> Iterator[pb.StoryUpdate]:
    """Yields the session's updates until it closes, the client leaves, or `finished()` with nothing left."""
    while True:
        item = session.outbox.get(POLL_S, ticket)
        if item is CLOSED:
            return
        if isinstance(item, BaseException):
            raise item
        if item is not None:
            yield item
        elif not context.is_active() or finished():
            return
