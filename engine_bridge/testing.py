"""An in-process server on 127.0.0.1 and an ephemeral port, for tests (ours, and a game's own).

    with running_server(engine, limits=Limits(max_sessions=2)) as server:
        client = StorytellerClient(server.target)
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from engine_bridge.director import Script
from engine_bridge.registry import Limits
from engine_bridge.server import BridgeServer, ServerConfig


@contextmanager
def running_server(engine, *, limits: Limits | None = None, script: Script | None = None,
                   grace_s: float = 1.0, registry=None, **config) -> Iterator[BridgeServer]:
    """Starts a BridgeServer (any ServerConfig field may be given; `registry` as BridgeServer's) and
    always stops it."""
    server = BridgeServer(engine, ServerConfig(bind="127.0.0.1", port=0, limits=limits or Limits(),
                                               grace_s=grace_s, **config), script, registry)
    server.start()
    try:
        yield server
    finally:
        server.stop()
