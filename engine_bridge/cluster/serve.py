"""`shotstream serve --cluster ADDRESS`: the same server, its sessions on a Ray cluster (`serve_cli` calls here)."""
from __future__ import annotations

import argparse

from engine_bridge.cluster.config import ClusterConfig, ModelSpec


def add_arguments(group) -> None:
    group.add_argument("--session-cpus", type=float, default=1.0,
                       help="with --cluster: Ray CPUs one session holds (default 1)")
    group.add_argument("--session-gpus", type=float, default=0.0,
                       help="with --cluster: share of a GPU one session holds (default 0)")


def cluster_config(args: argparse.Namespace) -> ClusterConfig:
    model = ModelSpec(args.preset, args.backend or "onnxruntime", str(args.weights) if args.weights else None,
                      threads=max(1, int(args.session_cpus)))
    return ClusterConfig(address=args.cluster, session_cpus=args.session_cpus, session_gpus=args.session_gpus,
                         model=model)


def registry(engine, limits, args: argparse.Namespace):
    from engine_bridge.cluster.frontdoor import ClusterRegistry

    return ClusterRegistry(engine, limits, cluster=cluster_config(args))
