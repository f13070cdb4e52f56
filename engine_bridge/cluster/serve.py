"""`shotstream serve --cluster ADDRESS`: the same server, its sessions on a Ray cluster (`serve_cli` calls here)."""
from __future__ import annotations

import argparse

from engine_bridge.cluster.config import ClusterConfig, ModelSpec


def cluster_config(args: argparse.Namespace) -> ClusterConfig:
    """The cluster settings `serve`'s options ask for; sessions load the front door's own model."""
    from runtime.cli_options import backend_for

    model = ModelSpec(args.preset, backend_for(args), str(args.weights) if args.weights else None,
                      device=args.device, threads=max(1, int(args.session_cpus)))
    return ClusterConfig(address=args.cluster, session_cpus=args.session_cpus, session_gpus=args.session_gpus,
                         spares_per_node=args.spares_per_node, model=model)


def registry(engine, limits, args: argparse.Namespace):
    from engine_bridge.cluster.frontdoor import ClusterRegistry

    return ClusterRegistry(engine, limits, cluster=cluster_config(args))
