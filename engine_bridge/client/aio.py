"""The asyncio client: the same API as `sync`, with `await` and `async for`.

    async with AsyncStorytellerClient("127.0.0.1:50051") as client:
        session = await client.open_session(seed=7, caption="a knight and a dragon, pixel art")
        await session.trigger("boss_appears", hero="knight")
        async for frame in session.frames(timeout=10):
            show(to_array(frame))
        await session.close()

A receiver task moves the WatchFrames stream into a bounded asyncio.Queue; a full queue stops it reading,
so the server's pacing policy applies to a slow game exactly as with the blocking client.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Sequence

import grpc

from engine_bridge.client import _common as c
from engine_bridge.wire import pb, rpc


class AsyncStorytellerClient:
    def __init__(self, target: str = "127.0.0.1:50051", *, token: str | None = None, tls: bool = False,
                 root_certificates: bytes | None = None, timeout: float = 10.0):
        if tls or root_certificates is not None:
            self._channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(root_certificates),
                                                    options=c.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=c.CHANNEL_OPTIONS)
        self.stub = rpc.StorytellerStub(self._channel)
        self.metadata = c.call_metadata(token)
        self.timeout = timeout

    async def call(self, method, request, timeout: float | None = None):
        try:
            return await method(request, timeout=timeout or self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            raise c.translate(error) from None

    async def info(self) -> pb.GetInfoResponse:
        return await self.call(self.stub.GetInfo, pb.GetInfoRequest())

    async def open_session(self, *, caption: str, seed: int = 0, frame_format: str | int = "rgb8",
                           pacing: str | int = "real_time", buffer_frames: int = 0, jpeg_quality: int = 0,
                           script: str = "", prompt_mode: str | None = None,
                           queue_frames: int = c.DEFAULT_QUEUE_FRAMES) -> "AsyncSession":
        """As StorytellerClient.open_session."""
        opened = await self.call(self.stub.OpenSession, c.open_request(
            seed=seed, caption=caption, frame_format=frame_format, pacing=pacing, buffer_frames=buffer_frames,
            jpeg_quality=jpeg_quality, script=script, prompt_mode=prompt_mode))
        return AsyncSession(self, opened, queue_frames)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncStorytellerClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class AsyncSession:
    def __init__(self, client: AsyncStorytellerClient, opened: pb.OpenSessionResponse, queue_frames: int):
        self.client, self.opened, self.id = client, opened, opened.session_id
        self._inbox = c.Inbox()
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=queue_frames)
        self._closed = False
        self._stream = client.stub.WatchFrames(pb.WatchFramesRequest(session_id=self.id), metadata=client.metadata)
        self._receiver = asyncio.get_running_loop().create_task(self._receive())

    async def submit_shot(self, prompt: str, chunks: int = 0, *, cut: bool = False) -> int:
        return (await self.submit_shots([(prompt, chunks)], cut=cut))[0]

    async def submit_shots(self, shots: Sequence[tuple[str, int] | str], *, cut: bool = False) -> list[int]:
        reply = await self.client.call(self.client.stub.SubmitShot, c.submit_request(self.id, shots, cut))
        return self._inbox.queued(reply.shot_ids, reply.dropped)

    async def trigger(self, event: str, /, **params) -> c.Triggered:
        reply = await self.client.call(self.client.stub.TriggerEvent, c.trigger_request(self.id, event, params))
        self._inbox.queued(reply.shot_ids, reply.dropped)
        return c.triggered(reply)

    async def cancel(self) -> None:
        await self.client.call(self.client.stub.SubmitShot, c.submit_request(self.id, [], cut=True))

    async def updates(self, timeout: float | None = None) -> AsyncIterator[pb.Frame | pb.ShotEvent]:
        while self._inbox.end is None:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no frame or shot event within {timeout} s") from None
            if self._inbox.accept(item):
                yield item
        self._inbox.raise_if_failed()

    async def frames(self, timeout: float | None = None) -> AsyncIterator[pb.Frame]:
        async for item in self.updates(timeout):
            if isinstance(item, pb.Frame):
                yield item

    async def collect_shot(self, shot_id: int, timeout: float = 60.0) -> tuple[list[pb.Frame], pb.ShotEvent]:
        collector = c.ShotCollector(shot_id, timeout)
        async for item in self.updates(timeout):
            if (done := collector.feed(item)) is not None:
                return done
        raise collector.stream_ended()

    @property
    def shot_events(self) -> dict[int, pb.ShotEvent]:
        return self._inbox.shot_events

    @property
    def dropped_words(self) -> dict[int, tuple[str, ...]]:
        """Lenient sessions: the words each shot's prompt lost, by shot id (shots that lost none are absent)."""
        return self._inbox.dropped_words

    async def _receive(self) -> None:
        end = c.StreamEnd()
        try:
            async for update in self._stream:
                item = c.unwrap(update)
                if item is None:
                    break
                await self._queue.put(item)
        except grpc.RpcError as error:
            if not self._closed:
                end = c.StreamEnd(c.translate(error))
        await self._queue.put(end)

    async def close(self) -> pb.CloseSessionResponse | None:
        if self._closed:
            return None
        self._closed = True
        try:
            return await self.client.call(self.client.stub.CloseSession, pb.CloseSessionRequest(session_id=self.id))
        except c.NotFound:
            return None
        finally:
            self._stream.cancel()
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
