"""Cluster settings and the one way this package connects to Ray.

On a real cluster Ray binds the node's network address. For a cluster that must stay on one machine's
loopback (tests, the bench) every process that starts or joins it needs RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
before it imports Ray (Ray reads it once, at import): `testing.local_cluster` sets and checks it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)
NAMESPACE = "shotstream"
DIRECTORY_NAME = "shotstream-directory"
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass(frozen=True)
class ModelSpec:
    """The model every session actor loads (the front door's own: same preset, backend and weights)."""

    preset: str = "tiny"
    backend: str = "onnxruntime"
    weights: str | None = None
    device: str = "cpu"  # torch backend: cpu or cuda
    threads: int = 1  # onnxruntime intra-op threads per session actor (SHOTSTREAM_THREADS)


@dataclass(frozen=True)
class ClusterConfig:
    address: str = "auto"  # a Ray address ("auto": the cluster this machine belongs to)
    session_cpus: float = 1.0  # Ray CPU resource one session actor holds
    session_gpus: float = 0.0  # Ray GPU share one session actor holds (0: CPU serving)
    model: ModelSpec = ModelSpec()
    backpressure: int = 2  # stream items a session actor may yield ahead of its front door
    rebuild_timeout_s: float = 60.0  # longest wait for a rebuilt session actor to be ready
    spares_per_node: int = 1  # session actors kept warm (engine loaded) per node, in room no session holds

    def __post_init__(self) -> None:
        if self.session_cpus <= 0 and self.session_gpus <= 0:
            raise ValueError("a session needs a CPU or a GPU share (session_cpus or session_gpus > 0)")
        if self.spares_per_node < 0:
            raise ValueError("spares_per_node must be 0 or more")
        if self.backpressure < 1:
            raise ValueError("backpressure must be at least 1")


def require_ray():
    """The ray module, or ImportError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"Ray is not installed ({exc}): the cluster needs the extra, "
                          "pip install -e '.[cluster]'") from exc
    return ray


def connect(address: str) -> None:
    """Joins the Ray cluster at `address` (once per process)."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, namespace=NAMESPACE, logging_level=logging.WARNING, log_to_driver=False)
        log.info("joined the Ray cluster", extra={"address": address})
