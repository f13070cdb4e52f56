"""The `shotstream` command: a thin dispatcher. Each subcommand is one module with `add_arguments(parser)` and
`run(args) -> int`: render, vocab, model-info and bench here (shotstream/<command>.py), serve, demo, eval and train in
their own packages, imported only when asked for (so `shotstream render` never imports grpc or pygame).

Exit status, every subcommand alike (`runtime.cli_options.EXIT_STATUS`, shown in `--help`): 0 done; 2 refused,
before any work where it can be known then: a bad argument or a bad input (story file, prompt words, output path,
weights), said in one line on stderr; 1 failed unexpectedly (a bug: the traceback is printed).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from runtime.cli_options import EXIT_STATUS, UsageError

# subcommand -> module providing add_arguments(parser) and run(args) -> int, parsed here
COMMANDS = {"render": "shotstream.render", "vocab": "shotstream.vocab", "model-info": "shotstream.model_info",
            "bench": "shotstream.bench"}
# subcommand -> (module, help): these parse their own options (argparse here would refuse their "--x")
PLUGINS = {
    "serve": ("engine_bridge.serve_cli", "run the gRPC server"),
    "demo": ("demo_game.cli", "play the pygame demo (headless: record a video)"),
    "eval": ("distill.eval_cli", "measure the shipped components, and generated stories, on held-out story-world data"),
    "train": ("distill.train_cli", "prepare the teacher's story-world data, or train the teacher (--recipe)"),
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="shotstream", description="ShotStream Runtime: live multi-shot cutscenes",
                                 epilog=EXIT_STATUS)
    ap.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=module.HELP))
        sub.choices[name].set_defaults(func=module.run)
    for name, (_, help_text) in PLUGINS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # listed in --help; main() hands these to their module
    for p in sub.choices.values():
        p.epilog = EXIT_STATUS
    return ap


def run_plugin(module_name: str, name: str, rest: list[str]) -> int:
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        print(f"shotstream {name}: not available ({e}); install the package's extras", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"shotstream {name}", epilog=EXIT_STATUS)
    module.add_arguments(parser)
    try:
        return int(module.run(parser.parse_args(rest)) or 0)
    except SystemExit as e:  # a plugin's refusal with a message (argparse exits 2 with its own, code an int)
        if isinstance(e.code, str):
            print(f"shotstream {name}: {e.code}", file=sys.stderr)
            return 2
        raise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PLUGINS:  # the plugin parses its own options (argparse would refuse "--x")
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return run_plugin(PLUGINS[argv[0]][0], argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from runtime.errors import ShotStreamError

    try:
        return args.func(args)
    except UsageError as e:
        print(f"shotstream {args.command}: {e}", file=sys.stderr)
        return 2
    except ShotStreamError as e:
        print(f"shotstream {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
