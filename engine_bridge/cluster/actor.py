"""The session actor: one session of the engine bridge, with its own engine, on the node that holds its cache.

Created by the directory (its owner, so a front door that goes away takes no session with it), with the
Ray resources a session needs. Its frames leave through `updates`, a Ray streaming generator whose
backpressure bounds what it runs ahead of its front door. Typed errors travel back as `Raised` values and
are raised again, unchanged, by the caller (`unwrap`): Ray's own wrapping would change their message.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass

from engine_bridge.cluster.config import DIRECTORY_NAME, NAMESPACE, ModelSpec
from engine_bridge.cluster.journal import Resume
from engine_bridge.errors import BridgeError, SessionNotFoundError
from engine_bridge.outbox import CLOSED
from engine_bridge.session import SessionSettings
from engine_bridge.wire import pb
from runtime.errors import ShotStreamError

log = logging.getLogger(__name__)
POLL_S = 0.2  # an idle stream sends an empty item this often, so its front door can check on its client
BATCH = 8  # most updates in one stream item
CLOSE_DRAIN_S = 5.0  # longest wait at close for an attached stream to take its `closed` update


@dataclass(frozen=True)
class Raised:
    """A typed error, as data: its class, message and listed words."""

    kind: type
    message: str
    words: tuple[str, ...] = ()

    @classmethod
    def of(cls, exc: BaseException) -> "Raised":
        return cls(type(exc), str(exc), tuple(getattr(exc, "words", ())))

    def error(self) -> BaseException:
        exc = self.kind.__new__(self.kind)
        Exception.__init__(exc, self.message)
        if self.words:
            exc.words = list(self.words)
        return exc


def unwrap(value):
    """The value of an actor call, or its typed error raised."""
    if isinstance(value, Raised):
        raise value.error()
    return value


def not_found(session_id: str) -> SessionNotFoundError:
    return SessionNotFoundError(f"no open session {session_id[:64]!r} (closed, expired or never opened)")


def typed(method):
    """Actor methods return typed errors as `Raised` instead of raising them."""
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (BridgeError, ShotStreamError) as exc:
            return Raised.of(exc)
    return call


@dataclass(frozen=True)
class SessionSpec:
    session_id: str
    settings: SessionSettings
    script_text: str
    server_script: object  # engine_bridge.director.Script | None
    max_queued: int
    max_param_chars: int
    max_shots: int
    max_script_bytes: int


class SessionActor:
    """Use through `remote_class()`: Ray's decorator is applied where Ray is imported.

    Its life: created as a spare and `warm`ed (the engine loaded, the slow part), then `open`ed for one
    session, `close`d, and either opened again for another session or ended by the directory. Every
    session call names its session: a call for a session this actor no longer serves is refused, so a front
    door holding an old handle cannot reach the next session."""

    def __init__(self, model: ModelSpec):
        self.model = model
        self.engine = None
        self.session = None
        self._streams = 0  # `updates` generators running
        self._streams_cond = threading.Condition()

    def warm(self) -> None:
        """Loads the engine (what makes starting a session slow): a spare is ready once this returns."""
        from runtime import Engine

        model = self.model
        os.environ["SHOTSTREAM_THREADS"] = str(model.threads)  # read once, by the engine's onnxruntime pool
        self.engine = Engine.load(model.preset, model.backend, model.weights, device=model.device)

    @typed
    def open(self, spec: SessionSpec, resume: Resume | None) -> tuple[tuple[str, ...], list[str]]:
        """Opens (or restores from `resume`) the story and the session `spec`. Returns the caption's dropped
        words and the director's events."""
        import ray

        from engine_bridge.cluster.journaled import JournaledSession
        from engine_bridge.director import Director, parse_script

        if self.session is not None:
            raise RuntimeError(f"this actor still serves session {self.session.id}")
        if self.engine is None:
            raise RuntimeError("open before warm: the directory warms every session actor it creates")
        engine, s = self.engine, spec.settings
        scripts = [parse_script(spec.script_text, source="session script", max_chunks=engine.info.max_chunks_per_shot,
                                max_shots=spec.max_shots, max_bytes=spec.max_script_bytes,
                                check_prompt=engine.check_prompt)] if spec.script_text else []
        if spec.server_script is not None:
            scripts.append(spec.server_script)
        story = engine.open_story(seed=s.seed, global_caption=s.global_caption, prompt_mode=s.prompt_mode)
        if resume is not None and resume.checkpoint is not None:
            story.restore(resume.checkpoint)
        directory = ray.get_actor(DIRECTORY_NAME, namespace=NAMESPACE)
        actor_id = ray.get_runtime_context().get_actor_id()
        self.session = JournaledSession(
            record=lambda seq, fields: directory.record.remote(spec.session_id, actor_id, seq, fields),
            resume=resume, session_id=spec.session_id, story=story, settings=s, fps=engine.info.fps,
            director=Director(scripts, max_param_chars=spec.max_param_chars), max_queued=spec.max_queued)
        return self.session.caption_dropped, self.session.director.events

    def _serving(self, session_id: str):
        """The session `session_id`, if this actor serves it."""
        session = self.session
        if session is None or session.id != session_id:
            raise not_found(session_id)
        return session

    @typed
    def submit(self, session_id: str, shots, cut: bool):
        return self._serving(session_id).submit(shots, cut=cut)

    @typed
    def trigger(self, session_id: str, event: str, params: dict):
        return self._serving(session_id).trigger(event, params)

    @typed
    def attach(self, session_id: str) -> int:
        return self._serving(session_id).attach()

    def detach(self, session_id: str, ticket: int) -> None:
        session = self.session
        if session is not None and session.id == session_id:
            session.detach(ticket)

    @typed
    def state(self, session_id: str) -> tuple[bool, int]:
        """(busy, updates waiting to be sent)."""
        session = self._serving(session_id)
        return session.busy, session.outbox.pending

    @typed
    def close(self, session_id: str, reason: int, timeout: float) -> tuple[int, int]:
        """Closes the session; the actor (its engine still loaded) may then open another."""
        result = self._serving(session_id).close(reason, timeout)
        # The `closed` update must reach an attached stream before the actor is reused or ended: its
        # generator returns only after its last item was handed to Ray.
        with self._streams_cond:
            self._streams_cond.wait_for(lambda: self._streams == 0, CLOSE_DRAIN_S)
        self.session = None
        return result

    def updates(self, session_id: str, ticket: int):
        """The stream `ticket`'s updates: lists of serialized updates (those ready at once, up to BATCH);
        None when idle for POLL_S (the front door checks its client then); a Raised value ends it with that
        error. Ends when the session closes or another stream takes over."""
        session = self.session
        if session is None or session.id != session_id:
            yield Raised.of(not_found(session_id))
            return
        with self._streams_cond:
            self._streams += 1
        try:
            while True:
                batch, item = [], session.outbox.get(POLL_S, ticket)
                while isinstance(item, pb.StoryUpdate):  # what is ready now leaves as one item (fewer Ray calls)
                    batch.append(item.SerializeToString())
                    item = session.outbox.get(0, ticket) if len(batch) < BATCH else None
                if batch:
                    yield batch
                if item is CLOSED:
                    return
                if isinstance(item, BaseException):
                    yield Raised.of(item)
                    return
                if not batch:
                    if not session.holds(ticket):
                        return
                    yield None
        finally:
            with self._streams_cond:
                self._streams -= 1
                self._streams_cond.notify_all()


def remote_class():
    """SessionActor as a Ray actor class (threaded: its stream and its commands run at once)."""
    import ray

    return ray.remote(max_concurrency=16, max_restarts=0)(SessionActor)
