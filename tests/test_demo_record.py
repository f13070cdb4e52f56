"""The demo's recorder beside a busy gRPC client: the encoder is spawned without running gRPC's fork handlers
(spawning it with a full fork() while the client's threads were inside gRPC broke the encoder's pipe now and then).
A real subprocess, so the gRPC core's own log reaches stderr."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import sys, threading
    import grpc, pygame
    from demo_game.record import Recorder

    out = sys.argv[1]
    stop = threading.Event()

    def connect(port):  # a client retrying a server that is not there: its threads live inside gRPC
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        while not stop.is_set():
            try:
                grpc.channel_ready_future(channel).result(timeout=0.01)
            except grpc.FutureTimeoutError:
                pass
        channel.close()

    threads = [threading.Thread(target=connect, args=(port,)) for port in (1, 2, 3)]
    for t in threads:
        t.start()
    pygame.display.init()
    screen = pygame.display.set_mode((64, 48))
    try:
        for i in range(12):
            recorder = Recorder(f"{out}/take{i}.mp4", fps=16)
            for shade in range(4):
                screen.fill((60 * shade, 20, 200))
                recorder.add(screen)
            recorder.close()
    finally:
        stop.set()
        for t in threads:
            t.join()
""")


def test_recording_beside_a_busy_grpc_client_runs_no_fork_handlers(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
           "PYGAME_HIDE_SUPPORT_PROMPT": "1", "GRPC_VERBOSITY": "INFO"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fork" not in done.stderr, done.stderr[-3000:]  # gRPC logs each fork it sees while its threads are busy
    from imageio_ffmpeg import count_frames_and_secs

    for i in range(12):
        assert count_frames_and_secs(str(tmp_path / f"take{i}.mp4")) == (4, 0.25)  # every take whole
        assert not (tmp_path / f"take{i}.mp4.log").exists()


def test_a_recorder_refuses_a_screen_that_changes_size(tmp_path):
    import pygame
    import pytest

    from demo_game.record import Recorder, RecordingError

    pygame.display.init()
    try:
        recorder = Recorder(tmp_path / "a.mp4", fps=16)
        recorder.add(pygame.Surface((32, 32)))
        with pytest.raises(RecordingError, match="changed size"):
            recorder.add(pygame.Surface((16, 16)))
        recorder.close()
        assert recorder.frames == 1 and (tmp_path / "a.mp4").stat().st_size > 0
    finally:
        pygame.display.quit()
