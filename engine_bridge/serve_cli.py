"""`shotstream serve`: load the model once and serve the Storyteller service over gRPC.

`shotstream/cli.py` dispatches its `serve` subcommand here lazily (`add_arguments`, `run`); this module also
runs on its own: `python -m engine_bridge.serve_cli --port 50051`. Stops gracefully on SIGINT/SIGTERM.
The token comes from --token-file or the SHOTSTREAM_TOKEN environment variable, never from the command
line (other users of the machine can read command lines).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path

from engine_bridge import logs
from engine_bridge.errors import ScriptError
from engine_bridge.registry import Limits
from runtime.cli_options import add_model_options, load_engine

log = logging.getLogger("engine_bridge.serve")
TOKEN_ENV = "SHOTSTREAM_TOKEN"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def byte_size(text: str) -> int:
    """'512MiB', '2GB', '1.5g', '1048576' -> bytes."""
    match = _SIZE.fullmatch(text.strip())
    unit = (match.group(2) or "").lower() if match else None
    if unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 512MiB, 2GB, 1048576)")
    return int(float(match.group(1)) * _UNITS[unit])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Limits()
    net = parser.add_argument_group("network")
    net.add_argument("--port", type=int, default=50051, help="TCP port; 0 picks a free one (default 50051)")
    net.add_argument("--bind", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1; 0.0.0.0 or :: exposes the server)")
    net.add_argument("--token-file", type=Path,
                     help=f"require 'authorization: Bearer <token>' with the token in this file "
                          f"(or set {TOKEN_ENV})")
    net.add_argument("--tls-cert", type=Path, help="PEM certificate chain; serve TLS only (needs --tls-key)")
    net.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    net.add_argument("--grace", type=float, default=5.0, help="seconds in-flight calls get at shutdown (default 5)")
    net.add_argument("--cluster", metavar="ADDRESS",
                     help="serve sessions that live on this Ray cluster ('auto': the one this machine is part of); "
                          "needs the cluster extra (docs/cluster.md)")
    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="tiny", help="model preset (default tiny)")
    model.add_argument("--backend", choices=("onnxruntime", "torch", "tensorrt"),
                       help="inference backend (default onnxruntime; torch for the official preset or a --device)")
    model.add_argument("--weights", type=Path, help="weights folder for presets without embedded weights (official: "
                       "shotstream_merged.pt, Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/)")
    add_model_options(model)
    lim = parser.add_argument_group("limits")
    lim.add_argument("--max-sessions", type=int, default=d.max_sessions, help=f"open sessions at once (default {d.max_sessions})")
    lim.add_argument("--cache-budget", type=byte_size, default=d.cache_budget_bytes,
                     help="cache memory all sessions may hold, e.g. 512MiB (default: no budget beyond --max-sessions)")
    lim.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s,
                     help=f"seconds before a session without calls or stream is closed (default {d.idle_timeout_s:g})")
    lim.add_argument("--max-buffer-frames", type=int, default=d.max_buffer_frames,
                     help=f"largest playout buffer a session may ask for (default {d.max_buffer_frames})")
    lim.add_argument("--max-message-bytes", type=byte_size, default=d.max_message_bytes,
                     help=f"largest request message (default {d.max_message_bytes})")
    cluster = parser.add_argument_group("cluster")
    cluster.add_argument("--session-cpus", type=float, default=1.0, help="with --cluster: Ray CPUs a session holds (default 1)")
    cluster.add_argument("--session-gpus", type=float, default=0.0, help="with --cluster: GPU share a session holds (default 0)")
    cluster.add_argument("--spares-per-node", type=int, default=1,
                         help="with --cluster: session actors each node keeps warm, engine loaded, so that opening "
                              "a session loads no model (default 1; they hold room no session holds)")
    parser.add_argument("--script", type=Path, help="server-wide director script (TOML)")
    parser.add_argument("--prompt-mode", choices=("strict", "lenient"), default="strict",
                        help="sessions that do not choose: unknown prompt words refused (strict, default) or "
                             "left out and reported (lenient)")
    parser.add_argument("--log-format", choices=("json", "text"), default="json", help="log line format (default json)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def run(args: argparse.Namespace) -> int:
    logs.configure(args.log_format, args.log_level)
    try:
        return _serve(args)
    except (ScriptError, OSError, ValueError, ImportError) as exc:  # ImportError: --cluster without Ray
        log.error("cannot serve: %s", exc)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from runtime.config import PRESETS
    from runtime.errors import ShotStreamError

    from engine_bridge.server import BridgeServer, ServerConfig

    token = _token(args)
    tls_cert, tls_key = (p.read_bytes() if p else None for p in (args.tls_cert, args.tls_key))
    limits = Limits(max_sessions=args.max_sessions, cache_budget_bytes=args.cache_budget,
                    idle_timeout_s=args.idle_timeout, max_buffer_frames=args.max_buffer_frames,
                    default_buffer_frames=min(Limits().default_buffer_frames, args.max_buffer_frames),
                    max_message_bytes=args.max_message_bytes)
    config = ServerConfig(bind=args.bind, port=args.port, limits=limits, token=token, tls_cert=tls_cert,
                          tls_key=tls_key, grace_s=args.grace, available_presets=tuple(sorted(PRESETS)),
                          default_prompt_mode=args.prompt_mode)
    try:
        engine = load_engine(args)
    except ShotStreamError as exc:
        log.error("cannot load the model: %s", exc)
        return 2
    registry = None
    if args.cluster:  # imported here only: Ray is an optional extra
        from engine_bridge.cluster.serve import registry as cluster_registry

        registry = cluster_registry(engine, limits, args)
    server = BridgeServer(engine, config, registry=registry)
    if args.script:
        server.registry.server_script = server.registry.load_script(args.script)
    server.start()
    stopping = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda number, frame: stopping.set())
    print(f"shotstream serving on {args.bind}:{server.port}", flush=True)  # scripts wait for this line
    stopping.wait()
    log.info("shutting down", extra={"grace_s": args.grace})
    server.stop()
    return 0


def _token(args: argparse.Namespace) -> str | None:
    token = args.token_file.read_text().strip() if args.token_file else os.environ.get(TOKEN_ENV, "").strip()
    if args.token_file and not token:
        raise ValueError(f"the token file {args.token_file} is empty")
    return token or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shotstream serve", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
