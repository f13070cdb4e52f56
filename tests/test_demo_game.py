"""The demo game, headless: real pygame on SDL's dummy driver, a real in-process server on 127.0.0.1."""
from __future__ import annotations

import os
import re
import threading
import time

import pytest

pygame = pytest.importorskip("pygame")

from demo_game import cli  # noqa: E402
from demo_game.game import CAPTION, FPS, HERO, Game  # noqa: E402
from demo_game.hud import Layout  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("SDL_VIDEODRIVER") != "dummy",
                                reason="the demo tests run on SDL's dummy video driver (tests/conftest.py sets it)")
DT = 1.0 / FPS


@pytest.fixture(scope="module")
def address(ort_engine):
    with cli.server_address(None, engine=ort_engine) as address:
        yield address


@pytest.fixture
def game(address):
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode(Layout(4).size)
    feed = cli._feed(address, seed=3, caption=CAPTION)
    game = Game(screen, feed.start(), seed=3, scale=4)
    try:
        step_until(game, lambda: feed.state == "live", what="the session to open")
        yield game
    finally:
        feed.close()
        pygame.quit()


def step_until(game: Game, done, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        game.step(DT)
        time.sleep(0.005)  # let the network threads run


def press(key: int, up: bool = False) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYUP if up else pygame.KEYDOWN, key=key))


def panel_bytes(game: Game, surface: pygame.Surface | None = None) -> bytes:
    """The cutscene panel's pixels below its top strip (where the shot number and LIVE are written)."""
    box = game.layout.video_rect
    below_labels = pygame.Rect(0, 24, box.width, box.height - 24)
    source = game.screen.subsurface(box) if surface is None else surface
    return pygame.image.tobytes(source.subsurface(below_labels), "RGB")


def test_frames_from_the_stream_replace_the_placeholder(game):
    game.step(DT)
    placeholder = panel_bytes(game)
    press(pygame.K_SPACE)  # nobody around: a "swing" cutscene
    step_until(game, lambda: game.cutscene.frames_shown >= 3, what="frames")
    shown = panel_bytes(game)
    assert shown != placeholder
    expected = pygame.transform.scale(game.cutscene.image, game.layout.video_rect.size)
    assert shown == panel_bytes(game, expected)  # the frame on screen is the latest one played
    assert game.cutscene.showing.event == "swing"
    assert "the red knight strikes" in game.cutscene.showing.prompt


def test_keys_walk_the_hero_into_a_place_and_its_cutscene_plays(game):
    start = (game.hero.x, game.hero.y)
    press(pygame.K_LEFT)
    press(pygame.K_DOWN)
    step_until(game, lambda: game.place is not None, timeout=5, what="the hero to reach a place")
    press(pygame.K_LEFT, up=True)
    press(pygame.K_DOWN, up=True)
    game.step(DT)
    assert game.hero.x < start[0] and game.hero.y > start[1]
    assert game.place.key == "village"
    step_until(game, lambda: game.cutscene.showing is not None, what="the village cutscene")
    assert game.cutscene.showing.event == "enter_place"
    assert "village" in game.cutscene.showing.prompt
    moved = (game.hero.x, game.hero.y)
    for _ in range(5):
        game.step(DT)
    assert (game.hero.x, game.hero.y) == moved  # keys released: he stands still
    from demo_game.cutscene import BUFFER_FRAMES

    step_until(game, lambda: game.cutscene.idle, what="the place's shots to play out")
    assert 0 < game.cutscene.most_buffered <= BUFFER_FRAMES  # a full buffer takes no more frames (backpressure)


def test_c_cuts_the_cutscene_and_q_quits(game):
    press(pygame.K_SPACE)
    step_until(game, lambda: game.cutscene.frames_shown >= 1, what="frames")
    press(pygame.K_c)
    step_until(game, lambda: game.cutscene.idle, timeout=10, what="the cut to empty the queue")
    shots = game.cutscene.shots.values()
    step_until(game, lambda: all(shot.ended for shot in shots), timeout=10, what="the shots' final events")
    assert {shot.ended for shot in shots} <= {"cancelled", "dropped", "completed"}
    assert not game.cutscene.buffer
    press(pygame.K_q)
    game.step(DT)
    assert not game.running


def type_line(text: str) -> None:
    """What a keyboard sends: T opens the line, the text arrives as TEXTINPUT, ENTER sends it."""
    press(pygame.K_t)
    for ch in text:
        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=ch))
    press(pygame.K_RETURN)


def test_the_player_types_a_line_and_its_shot_plays_with_the_unknown_words_left_out(game):
    line = "The red knight zorblaxes in the forest, quux!"
    type_line(line)
    game.step(DT)
    assert game.line is None  # ENTER sent it
    step_until(game, lambda: any(s.prompt == line for s in game.cutscene.shots.values()), what="the shot to start")
    shot = next(s for s in game.cutscene.shots.values() if s.prompt == line)
    assert shot.dropped == ("zorblaxes", "quux") and shot.event == ""
    step_until(game, lambda: game.cutscene.showing is shot and game.cutscene.frames_shown > 0, what="its frames")
    assert any("left out: zorblaxes, quux" in text for text, _ in game.hud.log)
    assert panel_bytes(game) == panel_bytes(game, pygame.transform.scale(game.cutscene.image,
                                                                           game.layout.video_rect.size))


def test_while_typing_keys_write_instead_of_playing_and_esc_drops_the_line(game):
    press(pygame.K_t)
    for key in (pygame.K_LEFT, pygame.K_q, pygame.K_c):
        press(key)
    pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text="ab"))
    press(pygame.K_BACKSPACE)
    start = (game.hero.x, game.hero.y)
    for _ in range(3):
        game.step(DT)
    assert game.running and game.line == "a" and (game.hero.x, game.hero.y) == start
    press(pygame.K_ESCAPE)
    game.step(DT)
    assert game.running and game.line is None and not game.cutscene.pending


def test_the_autoplay_tour_types_its_line_through_the_keyboard_path(game):
    from demo_game.pilot import LINE, ROUTE, Pilot

    assert ("type", LINE) in ROUTE
    game.pilot = Pilot(route=(("type", "the knight zorblaxes in the cave."), ("wait", 9.0)))
    step_until(game, lambda: game.line is not None, timeout=2, what="the line to open")
    step_until(game, lambda: game.line is None, timeout=10, what="the pilot to send its line")
    step_until(game, lambda: game.cutscene.showing is not None
               and game.cutscene.showing.prompt == "the knight zorblaxes in the cave.", what="its shot")
    assert game.cutscene.showing.dropped == ("zorblaxes",)


def test_every_cutscene_prompt_is_in_the_models_vocabulary(ort_engine):
    """Each event, at each place, with each cast member, renders to a prompt the model accepts."""
    from engine_bridge.director import parse_script

    from demo_game import world

    script = parse_script(cli.SCRIPT.read_text(), check_prompt=ort_engine.check_prompt)
    for rule in script.events.values():
        assert rule.required <= {"hero", "friend", "foe", "where"}
    for place in world.PLACES:
        for other in world.cast():
            values = {"hero": HERO, "friend": other.key, "foe": other.key, "where": place.where}
            for rule in script.events.values():
                for shot in rule.shots:
                    ort_engine.check_prompt(f"{CAPTION} shot1: {shot.prompt.render(values)}")


def read_video(path, size: tuple[int, int]):
    """Every frame of the video at `path` (RGB, `size` = (width, height)), decoded by imageio-ffmpeg's ffmpeg in a
    plain child process. Not imageio's reader: it starts ffmpeg with preexec_fn, a full fork() beside the gRPC
    threads of this process, and gives up on a header it has not read within 10 s (both met on busy cores)."""
    import subprocess

    import numpy as np
    from imageio_ffmpeg import get_ffmpeg_exe

    width, height = size
    raw = subprocess.run([get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-"], capture_output=True, check=True, timeout=300).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def test_headless_autoplay_records_the_screen_and_leaves_nothing_running(tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg")
    before = set(threading.enumerate())
    video = tmp_path / "demo.mp4"
    assert cli.main(["--seconds", "6", "--record", str(video), "--scale", "3"]) == 0
    out = capsys.readouterr().out
    assert str(video) in out and "demo: 5 s of at most 6" in out  # a progress line while it records
    shots = [line for line in out.splitlines() if line.startswith("playback: shot ")]
    assert shots and all(", 16.0 fps while buffered" in line or "1 frames" in line for line in shots), out
    assert re.search(r"playback: \d+ shots, \d+ frames shown at 16.00\.\.16.00 fps of game time", out), out
    frames = read_video(video, Layout(3).size)
    assert len(frames) == 6 * FPS
    assert frames[-1].std() > 10  # a drawn game, not a blank screen
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t.name for t in set(threading.enumerate()) - before]


def test_without_a_server_the_game_still_runs_and_ends_cleanly(tmp_path):
    before = set(threading.enumerate())
    video = tmp_path / "alone.mp4"
    assert cli.main(["--server", "127.0.0.1:1", "--seconds", "1", "--record", str(video)]) == 0
    assert video.stat().st_size > 0
    assert not [t.name for t in set(threading.enumerate()) - before]


def test_the_player_keeps_the_story_fps_and_drops_what_a_cut_replaced():
    from engine_bridge.client import pb

    from demo_game.cutscene import Cutscene

    def frame(shot_id: int, index: int) -> pb.Frame:
        return pb.Frame(shot_id=shot_id, frame_index=index, width=2, height=2, data=bytes([index] * 12))

    player = Cutscene(fps=16)
    player.issued((1,), interrupt=False)
    for i in range(8):
        player.accept_frame(frame(1, i))
    for _ in range(4):  # 4 game frames at 32 fps = 2 story frames
        player.update(1 / 32)
    assert player.frames_shown == 2 and len(player.buffer) == 6
    player.issued((2, 3), interrupt=True)  # an attack cuts in: shot 1's frames are stale
    assert not player.buffer and player.pending == {2, 3}
    player.accept_frame(frame(1, 8))  # still in flight when the cut happened
    player.accept_frame(frame(2, 0))
    player.update(1 / 16)
    assert player.showing.shot_id == 2 and not player.buffer


def _frames(shot_id: int, count: int, start: int = 0):
    from engine_bridge.client import pb

    return [pb.Frame(shot_id=shot_id, frame_index=start + i, width=2, height=2, data=bytes([i % 250] * 12))
            for i in range(count)]


@pytest.mark.parametrize("game_fps", [30, 60, 24, 7])
def test_buffered_frames_play_at_the_story_fps_of_game_time_whatever_the_game_step(game_fps):
    from demo_game.cutscene import Cutscene

    player = Cutscene(fps=16)
    player.issued((1,), interrupt=False)
    for frame in _frames(1, 33):
        player.accept_frame(frame)
    player.accept_event(_ended(1))  # every frame is here: a dry buffer after the last is the end, not a stall
    seconds = 0.0
    while player.buffer:
        player.update(1 / game_fps)
        seconds += 1 / game_fps
        assert not player.buffering
    record = player.playback[1]
    assert record.frames == 33 and record.stalls == 0
    assert record.last_at - record.first_at == pytest.approx(32 / 16)  # frame k at first + k/16, exactly
    assert record.playing_fps == pytest.approx(16.0)
    assert seconds < 33 / 16 + 1 / game_fps + 1e-9  # the last frame shows within one game step of its time


def test_a_dry_buffer_while_frames_are_coming_is_buffering_counted_and_said_never_a_slow_down():
    from demo_game.cutscene import Cutscene
    from demo_game.hud import Hud, Layout

    player = Cutscene(fps=16)
    player.issued((1, 2), interrupt=False)
    for frame in _frames(1, 9):
        player.accept_frame(frame)
    for _ in range(30):  # 1 s of game time: 9 frames last 0.5 s, then half a second dry
        player.update(1 / 30)
    assert player.buffering and player.playback_fps == 0.0
    pygame.init()
    screen = pygame.display.set_mode(Layout(2).size)
    Hud(Layout(2)).draw_panel(screen, player, "live")  # draws "buffering" in place of the fps
    for frame in _frames(1, 12, start=9):  # the next chunk arrives
        player.accept_frame(frame)
    for _ in range(15):
        player.update(1 / 30)
    assert not player.buffering and player.playback_fps == pytest.approx(16.0)  # the HUD's fps: the story's
    player.accept_event(_ended(1))
    player.accept_event(_ended(2))
    for _ in range(30):  # the rest plays out; then nothing is pending: idle, not buffering
        player.update(1 / 30)
    assert not player.buffering and not player.buffer
    player.issued((3,), interrupt=False)  # a shot after an idle gap: the HUD's fps is its own, not the gap's
    for frame in _frames(3, 9):
        player.accept_frame(frame)
    for _ in range(10):
        player.update(1 / 30)
    assert player.playback_fps == pytest.approx(16.0)
    record = player.playback[1]
    assert record.frames == 21 and record.stalls == 1
    assert record.stall_s == pytest.approx(1.0 - 10 / 16)  # frame 10 was due at 10/16 s; its chunk came at 1 s
    assert player.stall_s == pytest.approx(record.stall_s)
    assert record.playing_fps == pytest.approx(16.0)


def _ended(shot_id: int):
    from engine_bridge.client import pb

    return pb.ShotEvent(shot_id=shot_id, phase=pb.SHOT_PHASE_COMPLETED)
