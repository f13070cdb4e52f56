"""The gRPC server: the Storyteller service, health, reflection, auth, TLS and graceful shutdown.

`BridgeServer(engine, config).start()` binds and serves; `stop()` marks health NOT_SERVING, closes every
session (each frame stream gets its `closed` update and ends), then gives in-flight calls `grace_s`.
Every long-lived stream holds one thread of the pool, so the pool is sized from `max_sessions`, and
calls beyond it are refused with RESOURCE_EXHAUSTED by gRPC rather than queued behind streams.
"""
from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine_bridge.director import Script
from engine_bridge.interceptors import BridgeInterceptor
from engine_bridge.registry import Limits, SessionRegistry
from engine_bridge.servicer import StorytellerServicer
from engine_bridge.wire import SERVICE_NAME, pb, rpc

log = logging.getLogger(__name__)
MAX_SEND_BYTES = 64 * 2**20  # frames of the large preset are ~1.2 MB raw


@dataclass(frozen=True)
class ServerConfig:
    bind: str = "127.0.0.1"
    port: int = 50051  # 0: any free port (see BridgeServer.port)
    limits: Limits = field(default_factory=Limits)
    token: str | None = None  # None: no authentication
    tls_cert: bytes | None = None  # PEM certificate chain; with tls_key, serve TLS only
    tls_key: bytes | None = None
    grace_s: float = 5.0
    available_presets: tuple[str, ...] = ()
    default_prompt_mode: str = "strict"  # what PROMPT_MODE_UNSPECIFIED means: "strict" or "lenient"

    @property
    def threads(self) -> int:
        return 2 * self.limits.max_sessions + 16  # a frame stream and a command reader per session, plus calls


class BridgeServer:
    def __init__(self, engine, config: ServerConfig = ServerConfig(), server_script: Script | None = None,
                 registry: SessionRegistry | None = None):
        """`registry`: where sessions live (default: this process; engine_bridge.cluster passes its own)."""
        if (config.tls_cert is None) != (config.tls_key is None):
            raise ValueError("TLS needs both a certificate and a key")
        if config.default_prompt_mode not in ("strict", "lenient"):
            raise ValueError(f"default_prompt_mode must be 'strict' or 'lenient', got {config.default_prompt_mode!r}")
        self.config = config
        self.registry = registry or SessionRegistry(engine, config.limits, server_script)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.port = 0
        self._server: grpc.Server | None = None

    def start(self) -> int:
        cfg = self.config
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.threads, thread_name_prefix="grpc"),
            interceptors=[BridgeInterceptor(cfg.token)],
            options=[("grpc.max_receive_message_length", cfg.limits.max_message_bytes),
                     ("grpc.max_send_message_length", MAX_SEND_BYTES),
                     ("grpc.so_reuseport", 0)],  # a port already in use is an error, not a shared port
            maximum_concurrent_rpcs=cfg.threads)
        servicer = StorytellerServicer(self.registry, available_presets=cfg.available_presets,
                                       auth_required=cfg.token is not None,
                                       default_prompt_mode=cfg.default_prompt_mode)
        rpc.add_StorytellerServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        address = f"{_host(cfg.bind)}:{cfg.port}"
        if cfg.tls_cert is not None:
            creds = grpc.ssl_server_credentials([(cfg.tls_key, cfg.tls_cert)])
            self.port = server.add_secure_port(address, creds)
        else:
            self.port = server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {address} (in use, or not an address of this machine)")
        server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.registry.start_reaper()
        self._server = server
        info = self.registry.engine.info
        log.info("serving", extra={"address": self.target, "tls": cfg.tls_cert is not None,
                                   "auth": cfg.token is not None, "preset": info.preset, "backend": info.backend,
                                   "max_sessions": cfg.limits.max_sessions})
        return self.port

    def stop(self, grace: float | None = None) -> None:
        """Graceful: NOT_SERVING, close sessions (streams end with `closed`), then drain calls."""
        if self._server is None:
            return
        self.health.enter_graceful_shutdown()
        self.registry.close_all(pb.CLOSE_REASON_SHUTDOWN)
        self._server.stop(self.config.grace_s if grace is None else grace).wait()
        self.registry.stop_reaper()
        self._server = None
        log.info("stopped")

    @property
    def target(self) -> str:
        """host:port for clients of this server (after start)."""
        return f"{_host(self.config.bind)}:{self.port}"

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops; True if it did within `timeout`."""
        return self._server is None or not self._server.wait_for_termination(timeout)

    def __enter__(self) -> "BridgeServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _host(bind: str) -> str:
    return f"[{bind}]" if ":" in bind else bind  # IPv6 literals need brackets
