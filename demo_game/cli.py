"""`shotstream demo`: play the demo game, or, on a machine without a display, let it play itself and
record a video of it.

`shotstream/cli.py` dispatches its `demo` subcommand here lazily (`add_arguments`, `run`); `python -m
demo_game` does the same. Without `--server` the demo starts its own server in this process (by default
the tiny model on onnxruntime; `--preset shotstream-1.3b --backend torch --weights DIR --device cuda` for the
official one; 127.0.0.1, a free port) and stops it on the way out.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger("demo_game")
DEFAULT_RECORD = Path("out/demo.mp4")
AUTOPLAY_SECONDS = 45.0  # a cap: the tour ends sooner, once its route is done and the last cutscene played
PROGRESS_EVERY_S = 5.0  # game seconds between progress lines of a recorded run
SCRIPT = Path(__file__).with_name("cutscenes.toml")
TOKEN_ENV = "SHOTSTREAM_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="a running `shotstream serve` (default: start one in this process)")
    parser.add_argument("--autoplay", action="store_true",
                        help="the knight tours the map by himself (default on a machine without a display)")
    parser.add_argument("--seconds", type=float,
                        help=f"stop after this many seconds of game time (autoplay default {AUTOPLAY_SECONDS:g})")
    parser.add_argument("--record", type=Path, metavar="PATH",
                        help=f"write the game screen to this video file (headless default {DEFAULT_RECORD})")
    parser.add_argument("--seed", type=int, default=7, help="story seed, also lays out the map (default 7)")
    parser.add_argument("--scale", type=int, default=4, choices=range(2, 9), metavar="2..8",
                        help="cutscene panel zoom, nearest neighbour (default 4: 64 px frames shown at 256 px)")
    from runtime.cli_options import add_model_options  # the in-process server's options, as `shotstream serve` has them

    model = parser.add_argument_group("model of the in-process server (without --server)")
    model.add_argument("--preset", default="tiny", help="model preset (default tiny)")
    model.add_argument("--backend", choices=("onnxruntime", "torch", "tensorrt"),
                       help="inference backend (default onnxruntime; torch for the official preset or a --device)")
    model.add_argument("--weights", type=Path, help="weights folder (official preset)")
    add_model_options(model)


def headless() -> bool:
    """No display to open a window on: SDL already told to use its dummy driver, or Linux without X/Wayland."""
    if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return True
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    no_display = headless()
    if no_display:
        for name in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER"):
            os.environ.setdefault(name, "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    autoplay = args.autoplay or no_display
    record = args.record or (DEFAULT_RECORD if no_display else None)
    seconds = args.seconds if args.seconds is not None else (AUTOPLAY_SECONDS if autoplay else None)
    try:
        import pygame  # noqa: F401  (checked here for a friendly message)
    except ImportError:
        print("the demo needs pygame: pip install -e \".[demo]\"", file=sys.stderr)
        return 2
    if no_display and not args.autoplay:
        print("no display found: playing by itself and recording a video (see --help)", flush=True)
    return play(args, autoplay=autoplay, record=record, seconds=seconds)


def play(args: argparse.Namespace, *, autoplay: bool, record: Path | None, seconds: float | None) -> int:
    import pygame

    from demo_game.game import CAPTION, FPS, Game
    from demo_game.hud import Layout
    from demo_game.pilot import Pilot

    pygame.display.init()
    pygame.font.init()
    try:
        screen = pygame.display.set_mode(Layout(args.scale).size)
        pygame.display.set_caption("ShotStream demo: live generated cutscenes")
        splash(screen, "starting the model..." if not args.server else f"connecting to {args.server}...")
        with server_address(args.server, engine=None if args.server else _engine(args)) as address:
            feed = _feed(address, args.seed, CAPTION)
            recorder = _recorder(record, FPS)
            progress = _Progress(seconds) if recorder is not None else None
            game = Game(screen, feed.start(), seed=args.seed, scale=args.scale, pilot=Pilot() if autoplay else None,
                        recorder=recorder, seconds=seconds, fixed_step=recorder is not None, report=progress)
            try:
                code = game.run()
                if progress is not None:
                    progress.finish(game)
            finally:
                feed.close()
                if recorder is not None:
                    recorder.close()
        if recorder is not None:
            print(f"recorded {recorder.frames} frames ({recorder.seconds:.1f} s, "
                  f"{screen.get_width()}x{screen.get_height()}) to {recorder.path}", flush=True)
        return code
    finally:
        pygame.quit()


@contextmanager
def server_address(address: str | None, engine=None) -> Iterator[str]:
    """`address` as given, or the address of a server started here (on `engine`, by default the tiny
    model on onnxruntime) and stopped on exit."""
    if address:
        yield address
        return
    from engine_bridge.server import BridgeServer, ServerConfig

    started = time.monotonic()
    if engine is None:
        from runtime import Engine

        engine = Engine.load(preset="tiny", backend="onnxruntime")
    server = BridgeServer(engine, ServerConfig(bind="127.0.0.1", port=0, grace_s=1.0))
    server.start()
    log.info("in-process server on %s (%.1f s to start)", server.target, time.monotonic() - started)
    try:
        yield server.target
    finally:
        server.stop()


def _engine(args: argparse.Namespace):
    from runtime.cli_options import load_engine

    return load_engine(args)


def splash(screen, text: str) -> None:
    import pygame

    from demo_game import art

    screen.fill((30, 26, 44))
    font = art.Text(28)
    width = font.font.size(text)[0]
    font.draw(screen, text, ((screen.get_width() - width) // 2, screen.get_height() // 2 - 10), (250, 210, 60))
    pygame.display.flip()
    pygame.event.pump()


def _feed(address: str, seed: int, caption: str):
    from demo_game.feed import Feed

    token = os.environ.get(TOKEN_ENV, "").strip() or None
    return Feed(address, seed=seed, caption=caption, script=SCRIPT.read_text(encoding="utf-8"), token=token)


class _Progress:
    """A `Game.report` for a recorded run (otherwise silent until it ends): one line every PROGRESS_EVERY_S
    seconds of game time, and each shot's playback figures once it has played (`finish` prints the rest)."""

    def __init__(self, seconds: float | None):
        self.seconds, self.next_at, self.printed = seconds, PROGRESS_EVERY_S, set()

    def __call__(self, game) -> None:
        played = list(game.cutscene.playback.values())[:-1]  # the last one may still be playing
        self._print_shots(played)
        if game.time + 1e-6 < self.next_at:
            return
        self.next_at += PROGRESS_EVERY_S
        ended = sum(1 for shot in game.cutscene.shots.values() if shot.ended)
        cap = f" of at most {self.seconds:g}" if self.seconds else ""
        print(f"demo: {game.time:.0f} s{cap}, {ended} shots played, {game.cutscene.frames_shown} frames shown",
              flush=True)

    def _print_shots(self, records) -> None:
        for record in records:
            if record.shot_id not in self.printed:
                self.printed.add(record.shot_id)
                print(f"playback: {record.line()}", flush=True)

    def finish(self, game) -> None:
        cutscene = game.cutscene
        self._print_shots(cutscene.playback.values())
        records = [r for r in cutscene.playback.values() if r.playing_fps]
        stalls = sum(r.stalls for r in records)
        fps = sorted(r.playing_fps for r in records)
        span = f"{fps[0]:.2f}..{fps[-1]:.2f}" if fps else "-"
        print(f"playback: {len(cutscene.playback)} shots, {cutscene.frames_shown} frames shown at {span} fps of game "
              f"time while buffered (the story's {cutscene.fps}), {stalls} stalls inside shots, "
              f"{cutscene.stall_s:.2f} s buffering in all", flush=True)


def _recorder(path: Path | None, fps: int):
    if path is None:
        return None
    from demo_game.record import Recorder

    return Recorder(path, fps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shotstream demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
