"""The Python client SDK for the Storyteller service (blocking and asyncio). Imports no torch or runtime.

    from engine_bridge.client import StorytellerClient, to_array
    with StorytellerClient("127.0.0.1:50051") as client:
        with client.open_session(seed=7, caption="a knight and a dragon, pixel art") as session:
            session.trigger("boss_appears", hero="knight")
            for frame in session.frames(timeout=10):
                image = to_array(frame)  # (height, width, 3) uint8

Frames are `shotstream.v1.Frame` messages and shot events `shotstream.v1.ShotEvent` (see the .proto).
"""
from engine_bridge.client._common import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ShotStreamRpcError,
    Triggered,
    Unauthenticated,
    frames_sha256,
    to_array,
)
from engine_bridge.client.aio import AsyncSession, AsyncStorytellerClient
from engine_bridge.client.sync import Session, StorytellerClient
from engine_bridge.wire import pb

__all__ = [
    "StorytellerClient", "Session", "AsyncStorytellerClient", "AsyncSession", "Triggered", "pb",
    "ShotStreamRpcError", "InvalidArgument", "NotFound", "ResourceExhausted", "Unauthenticated",
    "FailedPrecondition", "frames_sha256", "to_array",
]
