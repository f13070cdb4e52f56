"""The blocking client: one channel, sessions whose frames arrive on a background thread.

    with StorytellerClient("127.0.0.1:50051") as client:
        with client.open_session(seed=7, caption="a knight and a dragon, pixel art") as session:
            session.trigger("boss_appears", hero="knight")
            for frame in session.frames(timeout=10):
                show(to_array(frame))

Commands (submit, trigger, cancel) are unary calls that answer at once, with typed errors. Frames and
shot events come from the session's WatchFrames stream: a receiver thread puts them into a bounded
queue (`queue_frames`). When the game reads slower than the server sends, the queue fills, the receiver
stops reading, and the server's pacing policy takes over (real time: oldest frames dropped and counted;
as fast as possible: generation pauses). Nothing is dropped on the client side.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterator, Sequence

import grpc

from engine_bridge.client import _common as c
from engine_bridge.wire import pb, rpc


class StorytellerClient:
    def __init__(self, target: str = "127.0.0.1:50051", *, token: str | None = None, tls: bool = False,
                 root_certificates: bytes | None = None, timeout: float = 10.0):
        """`tls` (or `root_certificates`, PEM) selects TLS; `timeout` bounds each unary call, seconds."""
        if tls or root_certificates is not None:
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates),
                                                options=c.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(target, options=c.CHANNEL_OPTIONS)
        self.stub = rpc.StorytellerStub(self._channel)
        self.metadata = c.call_metadata(token)
        self.timeout = timeout

    def call(self, method, request, timeout: float | None = None):
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            raise c.translate(error) from None

    def info(self) -> pb.GetInfoResponse:
        return self.call(self.stub.GetInfo, pb.GetInfoRequest())

    def open_session(self, *, caption: str, seed: int = 0, frame_format: str | int = "rgb8",
                     pacing: str | int = "real_time", buffer_frames: int = 0, jpeg_quality: int = 0,
                     script: str = "", prompt_mode: str | None = None,
                     queue_frames: int = c.DEFAULT_QUEUE_FRAMES) -> "Session":
        """Opens a session and starts receiving its frames. `pacing`: "real_time" or "asap". `prompt_mode`:
        "strict" (unknown words refused: InvalidArgument.unknown_words), "lenient" (left out, reported in
        `dropped_words` and on the shot's events), or None for the server's default (strict unless changed)."""
        opened = self.call(self.stub.OpenSession, c.open_request(
            seed=seed, caption=caption, frame_format=frame_format, pacing=pacing, buffer_frames=buffer_frames,
            jpeg_quality=jpeg_quality, script=script, prompt_mode=prompt_mode))
        return Session(self, opened, queue_frames)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "StorytellerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Session:
    def __init__(self, client: StorytellerClient, opened: pb.OpenSessionResponse, queue_frames: int):
        self.client, self.opened, self.id = client, opened, opened.session_id
        self._inbox = c.Inbox()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_frames)
        self._stopping = threading.Event()
        self._closed = False
        self._stream = client.stub.WatchFrames(pb.WatchFramesRequest(session_id=self.id), metadata=client.metadata)
        self._receiver = threading.Thread(target=self._receive, name=f"frames-{self.id[:8]}", daemon=True)
        self._receiver.start()

    # -- commands -----------------------------------------------------------------------------------
    def submit_shot(self, prompt: str, chunks: int = 0, *, cut: bool = False) -> int:
        """Queues one shot (or cuts to it); returns its shot id. chunks 0 = a full shot."""
        return self.submit_shots([(prompt, chunks)], cut=cut)[0]

    def submit_shots(self, shots: Sequence[tuple[str, int] | str], *, cut: bool = False) -> list[int]:
        reply = self.client.call(self.client.stub.SubmitShot, c.submit_request(self.id, shots, cut))
        return self._inbox.queued(reply.shot_ids, reply.dropped)

    def trigger(self, event: str, /, **params) -> c.Triggered:
        """Sends a game event to the director, e.g. trigger("boss_appears", hero="knight")."""
        reply = self.client.call(self.client.stub.TriggerEvent, c.trigger_request(self.id, event, params))
        self._inbox.queued(reply.shot_ids, reply.dropped)
        return c.triggered(reply)

    def cancel(self) -> None:
        """Stops the current shot at its next chunk boundary and drops the queued ones."""
        self.client.call(self.client.stub.SubmitShot, c.submit_request(self.id, [], cut=True))

    # -- frames -------------------------------------------------------------------------------------
    def updates(self, timeout: float | None = None) -> Iterator[pb.Frame | pb.ShotEvent]:
        """Frames and shot events in story order, until the session closes. `timeout`: seconds to wait
        for each item before TimeoutError."""
        while self._inbox.end is None:
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no frame or shot event within {timeout} s") from None
            if self._inbox.accept(item):
                yield item
        self._inbox.raise_if_failed()

    def frames(self, timeout: float | None = None) -> Iterator[pb.Frame]:
        """Only the frames of `updates` (shot events still land in `shot_events`)."""
        return (item for item in self.updates(timeout) if isinstance(item, pb.Frame))

    def collect_shot(self, shot_id: int, timeout: float = 60.0) -> tuple[list[pb.Frame], pb.ShotEvent]:
        """Reads updates until shot `shot_id` ends; returns the frames received and its final event."""
        collector = c.ShotCollector(shot_id, timeout)
        for item in self.updates(timeout):
            if (done := collector.feed(item)) is not None:
                return done
        raise collector.stream_ended()

    @property
    def shot_events(self) -> dict[int, pb.ShotEvent]:
        """The latest lifecycle event of each shot seen so far, by shot id."""
        return self._inbox.shot_events

    @property
    def dropped_words(self) -> dict[int, tuple[str, ...]]:
        """Lenient sessions: the words each shot's prompt lost, by shot id (shots that lost none are absent)."""
        return self._inbox.dropped_words

    def _receive(self) -> None:
        end = c.StreamEnd()
        try:
            for update in self._stream:
                item = c.unwrap(update)
                if item is None or not self._put(item):
                    break
        except grpc.RpcError as error:
            if not self._stopping.is_set():
                end = c.StreamEnd(c.translate(error))
        self._put(end)

    def _put(self, item) -> bool:
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    # -- end ----------------------------------------------------------------------------------------
    def close(self) -> pb.CloseSessionResponse | None:
        """Closes the session on the server (None if it was already gone) and stops the receiver."""
        if self._closed:
            return None
        self._closed = True
        try:
            return self.client.call(self.client.stub.CloseSession, pb.CloseSessionRequest(session_id=self.id))
        except c.NotFound:
            return None
        finally:
            self._stopping.set()
            self._stream.cancel()
            self._receiver.join(timeout=5)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
