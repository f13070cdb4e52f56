"""The game's line to the Storyteller server: one story session, driven without ever blocking the game.

Two background threads do the network work: the client SDK's receiver reads the session's frame
stream into its bounded queue, and this module's command thread connects, sends triggers and cuts
(unary calls), and closes. The render thread only calls `poll()`, which drains what has already
arrived (never waits), and `trigger()` / `cut()`, which only enqueue. Results and failures come back
as `Note`s in `poll()`'s output, so the HUD can show them.

The session is lenient about prompt words (the director script is still checked strictly when the session
opens): a line the player types plays with the words the model does not know left out, and those words
come back in the `spoken` note and on the shot's events.

The session uses "as fast as possible" pacing: generation runs ahead of playback until the buffers
are full, then pauses (backpressure, nothing dropped). The game plays frames at the story's fps from
its own buffer, so a slow game frame never speeds up or drops the cutscene.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from engine_bridge.client import ShotStreamRpcError, StorytellerClient, pb

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0   # unary calls, including open_session
RETRY_PAUSE_S = 2.0        # between connection attempts
SERVER_BUFFER_FRAMES = 16  # the server's playout buffer for this session
SDK_QUEUE_FRAMES = 16      # the client SDK's receive queue
SAY_CHUNKS = 3             # length of a shot the player types (2.1 s at 16 fps)
NOTES = 64                 # undelivered notes kept; the oldest go first


@dataclass(frozen=True)
class Note:
    """Something the command thread wants the game to know.

    kind: "connected" (info), "triggered" (shot_ids, interrupt), "suppressed" (cooldown_s),
    "spoken" (text: the line typed, shot_ids, dropped: its words left out),
    "cancelled" (shot_ids: every shot issued so far), "refused" / "error" (text).
    """

    kind: str
    text: str = ""
    event: str = ""
    shot_ids: tuple[int, ...] = ()
    interrupt: bool = False
    cooldown_s: float = 0.0
    info: pb.GetInfoResponse | None = None
    dropped: tuple[str, ...] = ()


class Feed:
    def __init__(self, address: str, *, seed: int, caption: str, script: str, token: str | None = None):
        self.address = address
        self.state = "connecting"  # connecting -> live -> closed, or error
        self._open_args = dict(seed=seed, caption=caption, script=script, pacing="asap", prompt_mode="lenient",
                               buffer_frames=SERVER_BUFFER_FRAMES, queue_frames=SDK_QUEUE_FRAMES)
        self._token = token
        self._commands: queue.Queue = queue.Queue(maxsize=64)
        self._notes: queue.Queue = queue.Queue(maxsize=NOTES)
        self._session = None
        self._closing = threading.Event()
        self._issued: list[int] = []
        self._thread = threading.Thread(target=self._work, name="shotstream-commands", daemon=True)

    # -- called from the game's thread ------------------------------------------------------------
    def start(self) -> "Feed":
        self._thread.start()
        return self

    def trigger(self, event: str, **params: str) -> None:
        """Sends a game event; while not connected it is dropped (a late cutscene is a wrong one)."""
        if self.state != "live":
            self._note(Note("refused", f"not connected ({self.state})", event=event))
            return
        self._send(("trigger", event, params))

    def say(self, text: str) -> None:
        """A line the player typed: queued as the next shot of the story, after the shots already queued."""
        if self.state != "live":
            self._note(Note("refused", f"not connected ({self.state})", event="say"))
            return
        self._send(("say", text, {}))

    def cut(self) -> None:
        """Cancel: stop the shot playing at its next chunk boundary and drop the queued ones."""
        self._send(("cancel", "", {}))

    def poll(self, max_frames: int) -> list:
        """What arrived since the last call, oldest first, without waiting: `Note`s, then
        `pb.ShotEvent`s and at most `max_frames` `pb.Frame`s in story order."""
        items: list = []
        while True:
            try:
                items.append(self._notes.get_nowait())
            except queue.Empty:
                break
        session = self._session
        if session is None or self.state != "live" or max_frames <= 0:  # a full buffer takes nothing (backpressure)
            return items
        frames = 0
        try:
            for item in session.updates(timeout=0):  # timeout 0: TimeoutError as soon as the queue is empty
                items.append(item)
                frames += isinstance(item, pb.Frame)
                if frames >= max_frames:
                    break
            else:
                self.state = "closed"  # the server closed the session (shutdown or idle)
        except TimeoutError:
            pass
        except ShotStreamRpcError as exc:
            self.state = "error"
            items.append(Note("error", f"frame stream ended: {exc}"))
        return items

    def close(self, timeout: float = 10.0) -> None:
        """Closes the session and joins the command thread (and, through the SDK, its receiver)."""
        self._closing.set()
        try:
            self._commands.put_nowait(None)
        except queue.Full:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.state != "error":
            self.state = "closed"

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _send(self, command: tuple) -> None:
        try:
            self._commands.put_nowait(command)
        except queue.Full:
            self._note(Note("refused", "too many commands waiting; dropped one", event=command[1]))

    def _note(self, note: Note) -> None:
        """Never blocks: when the game has not read its notes for a long while, the oldest are dropped."""
        while True:
            try:
                self._notes.put_nowait(note)
                return
            except queue.Full:
                try:
                    self._notes.get_nowait()
                except queue.Empty:
                    pass

    # -- the command thread ---------------------------------------------------------------------------
    def _work(self) -> None:
        client = self._connect()
        if client is None:
            return
        try:
            while True:
                command = self._commands.get()
                if command is None:
                    break
                self._run(*command)
        finally:
            session, self._session = self._session, None
            try:
                session.close()
            except ShotStreamRpcError as exc:
                log.warning("closing the session failed: %s", exc)
            client.close()

    def _connect(self) -> StorytellerClient | None:
        attempt = 0
        while not self._closing.is_set():
            attempt += 1
            client = StorytellerClient(self.address, token=self._token, timeout=CONNECT_TIMEOUT_S)
            try:
                info = client.info()
                self._session = client.open_session(**self._open_args)
            except ShotStreamRpcError as exc:
                client.close()
                log.info("cannot open a session on %s (attempt %d): %s", self.address, attempt, exc)
                self._note(Note("error", f"{exc.code.name}, retrying", event="server"))
                self._closing.wait(RETRY_PAUSE_S)
                continue
            self.state = "live"
            self._note(Note("connected", f"{info.preset} model on {info.backend}", info=info))
            return client
        return None

    def _run(self, kind: str, event: str, params: dict) -> None:
        started = time.monotonic()
        try:
            if kind == "cancel":
                self._session.cancel()
                self._note(Note("cancelled", shot_ids=tuple(self._issued)))
                return
            if kind == "say":
                shot_id = self._session.submit_shot(event, SAY_CHUNKS)
                self._issued.append(shot_id)
                self._note(Note("spoken", event, "say", (shot_id,),
                                dropped=self._session.dropped_words.get(shot_id, ())))
                return
            answer = self._session.trigger(event, **params)
        except ShotStreamRpcError as exc:
            words = f" (unknown words: {', '.join(exc.unknown_words)})" if exc.unknown_words else ""
            self._note(Note("refused", f"{exc.code.name}: {exc.details}{words}", event="say" if kind == "say" else event))
            return
        log.debug("%s answered in %.1f ms", event, (time.monotonic() - started) * 1000)
        if answer.suppressed:
            self._note(Note("suppressed", event=event, cooldown_s=answer.cooldown_remaining_s))
            return
        self._issued.extend(answer.shot_ids)
        self._note(Note("triggered", event=event, shot_ids=answer.shot_ids, interrupt=answer.interrupt))
