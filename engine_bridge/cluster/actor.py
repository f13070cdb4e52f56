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
from engine_bridge.errors import BridgeError
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
    """Use through `remote_class()`: Ray's decorator is applied where Ray is imported."""

    def __init__(self, model: ModelSpec, spec: SessionSpec, resume: Resume | None):
        self.model, self.spec, self.resume = model, spec, resume
        self.session = None
        self._streams = 0  # `updates` generators running
        self._streams_cond = threading.Condition()

    @typed
    def start(self) -> tuple[tuple[str, ...], list[str]]:
        """Loads the engine, opens (or restores) the story and the session. Returns the caption's dropped
        words and the director's events."""
        import ray

        from engine_bridge.cluster.journaled import JournaledSession
        from engine_bridge.director import Director, parse_script
        from runtime import Engine

        spec, model, resume = self.spec, self.model, self.resume
        os.environ["SHOTSTREAM_THREADS"] = str(model.threads)  # read once, by the engine's onnxruntime pool
        engine = Engine.load(model.preset, model.backend, model.weights, device=model.device)
        s = spec.settings
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

    @typed
    def submit(self, shots, cut: bool):
        return self.session.submit(shots, cut=cut)

    @typed
    def trigger(self, event: str, params: dict):
        return self.session.trigger(event, params)

    @typed
    def attach(self) -> int:
        return self.session.attach()

    def detach(self, ticket: int) -> None:
        self.session.detach(ticket)

    def state(self) -> tuple[bool, int]:
        """(busy, updates waiting to be sent)."""
        return self.session.busy, self.session.outbox.pending

    @typed
    def close(self, reason: int, timeout: float) -> tuple[int, int]:
        result = self.session.close(reason, timeout)
        # The `closed` update must reach an attached stream before the directory ends this actor: its
        # generator returns only after its last item was handed to Ray.
        with self._streams_cond:
            self._streams_cond.wait_for(lambda: self._streams == 0, CLOSE_DRAIN_S)
        return result

    def updates(self, ticket: int):
        """The stream `ticket`'s updates: lists of serialized updates (those ready at once, up to BATCH);
        None when idle for POLL_S (the front door checks its client then); a Raised value ends it with that
        error. Ends when the session closes or another stream takes over."""
        session = self.session
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
