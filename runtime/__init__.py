"""ShotStream runtime: the causal student, its dual KV cache and the streaming shot generator.

Public API (see docs/runtime-api.md): `Engine`, `Story`, `FrameChunk`, `errors`. Never imports grpc or pygame.
"""
from __future__ import annotations

from runtime import errors
from runtime.engine import Engine, EngineInfo
from runtime.story import FrameChunk, Story

__all__ = ["Engine", "EngineInfo", "Story", "FrameChunk", "errors"]
