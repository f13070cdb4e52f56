"""Docs that hold: every command the README and docs/ show runs as written (CI: at a reduced size where it is
long; the full size is marked slow), every story file in docs/ renders, and no doc, setup.py or test names a
file outside the repository. Commands run as processes of their own in a scratch folder, like a user on a fresh
clone: servers as subprocesses, the rest forked from a warm interpreter (tests/cli_runner.py) to spare a hundred
seconds of imports. A command whose reduced form is another's runs once."""
from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import cli_runner

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Shown, but not run here: the test suite itself, and generators covered by their own tests
# (test_bridge_client regenerates the stubs into a temporary folder; protoc needs a toolchain).
NOT_RUN = ("python -m pytest", "python -m grpc_tools.protoc", "python -m engine_bridge.protogen")
# CI sizes: options added (or replacing the documented value) so that each long command takes seconds.
REDUCED = {
    "render": {"--chunks": "1"},
    "demo": {"--seconds": "3"},
    "bench": {"--shots": "2", "--chunks": "2"},
    "eval": {"--shots": "2", "--stories": "1", "--seed": "84", "--steps": "2"},  # seed 84: a two-shot story
    "train": {"--recipe": str(REPO / "tests" / "data" / "teacher_smoke.toml")},
    # one variant (two are compared end to end in test_training_grid), the geometry of the committed image phase
    # that `--init` may name
    "compare": {"--samples": "8", "--batch": "4", "--variants": "tiny-p1", "--heldout-stories": "1",
                "--euler-steps": "2"},
    "generate": {"--stories": "2"},
    "contact-sheet": {"--stories": "1"},
}
SERVERS = ("shotstream serve", "python -m engine_bridge.serve_cli")
# Hours of compute at full size (training runs): only their reduced form runs, even with the slow tests.
NO_FULL_SIZE = ("train",)


def _subcommands() -> list[str]:
    from shotstream.cli import build_parser

    action = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(action.choices)


COMMAND = re.compile(rf"(shotstream ({'|'.join(_subcommands())})\b|python -m [\w.]+( |$))")


def documented_commands() -> list[str]:
    """`shotstream ...` and `python -m ...` commands in ```bash blocks and inline code, alternatives written
    `a|b|c` expanded, each once."""
    found: dict[str, None] = {}
    for path in DOCS:
        text = path.read_text()
        blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
        lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
        spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for line in lines + spans:
            for part in line.split("#")[0].split("&&"):
                part = " ".join(part.split())
                if COMMAND.match(part) and not part.startswith(NOT_RUN):
                    for command in expand(part):
                        found.setdefault(command)
    return list(found)


def expand(command: str) -> list[str]:
    words = [word.split("|") if re.fullmatch(r"[\w.-]+(\|[\w.-]+)+", word) else [word] for word in command.split()]
    return [" ".join(choice) for choice in itertools.product(*words)]


def argv(command: str, reduced: bool, scratch: Path) -> list[str]:
    words = shlex.split(command)
    words = ["-m", "shotstream.cli", *words[1:]] if words[0] == "shotstream" else words[1:]
    if reduced:
        for key, options in REDUCED.items():
            if key in words:
                for option, value in options.items():
                    if option in words:
                        words[words.index(option) + 1] = value
                    else:
                        words += [option, value]
    if "demo" in words and "--record" not in words:
        words += ["--record", str(scratch / "out" / "demo.mp4")]
    if "--port" in words:
        words[words.index("--port") + 1] = "0"  # any free port
    elif command.startswith(SERVERS):
        words += ["--port", "0"]
    return [sys.executable, *words]


def scratch_folder(tmp_path: Path) -> Path:
    """A folder holding the repository's files where the docs name them: story files (docs/...), recipes
    (build/recipes/...) and the committed teachers and students (distill/weights/...)."""
    for folder, pattern in (("docs", "*.json"), ("build/recipes", "*.toml"), ("distill/weights", "teacher-*"),
                            ("distill/weights", "student-*")):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for path in (REPO / folder).glob(pattern):
            shutil.copy(path, tmp_path / folder / path.name)
    return tmp_path


ENV = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


def run(command: str, reduced: bool, tmp_path: Path, data: Path | None = None) -> None:
    """`data`: a data folder copied to where the command reads its data (--data, default artifacts/data)."""
    scratch = scratch_folder(tmp_path)
    args = argv(command, reduced, scratch)
    if data is not None:
        shutil.copytree(data, scratch / (args[args.index("--data") + 1] if "--data" in args else "artifacts/data"))
    if command.startswith(SERVERS):
        serve(args, scratch)
        return
    done = cli_runner.run(args, cwd=scratch, env=ENV, timeout=600)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def serve(args: list[str], scratch: Path) -> None:
    """Starts the server, waits for its 'serving on' line, stops it with SIGTERM (graceful), checks it ended."""
    server = subprocess.Popen(args, cwd=scratch, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("shotstream serving on 127.0.0.1:"), line + server.stderr.read()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        server.stdout.close()
        server.stderr.close()
    assert server.returncode == 0


COMMANDS = documented_commands()


def reduced_once(commands: list[str]) -> list[str]:
    """The first of the commands that are the same once reduced (`demo --seconds 28` and `--seconds 20` both run
    three seconds; `serve` and `serve --port 50051` both take a free port): running it runs the others."""
    first: dict[tuple[str, ...], str] = {}
    for command in commands:
        first.setdefault(tuple(argv(command, reduced=True, scratch=Path("scratch"))), command)
    return list(first.values())


def test_the_docs_show_the_commands_a_user_needs():
    shown = " ".join(COMMANDS)
    for needed in ("shotstream render docs/example_story.json", "shotstream demo", "shotstream serve",
                   "shotstream vocab", "shotstream bench", "shotstream eval --suite vae"):
        assert needed in shown, needed


@pytest.fixture(scope="module")
def reduced_data(tmp_path_factory) -> Path:
    """The reduced recipe's data, made once by `shotstream train data` (as docs/training.md has a user prepare it
    before training); the `train data` commands make their own."""
    folder = tmp_path_factory.mktemp("reduced-data")
    run("shotstream train data", reduced=True, tmp_path=folder)
    return folder / "artifacts" / "data"


@pytest.mark.parametrize("command", reduced_once(COMMANDS))
def test_every_documented_command_runs(command, tmp_path, request):
    words = shlex.split(command)
    trains = words[1] == "train" and words[2] != "data"
    run(command, reduced=True, tmp_path=tmp_path, data=request.getfixturevalue("reduced_data") if trains else None)


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in COMMANDS if any(k in shlex.split(c) for k in REDUCED)
                                     and not any(k in shlex.split(c) for k in NO_FULL_SIZE)])
def test_every_documented_command_runs_at_full_size(command, tmp_path):
    run(command, reduced=False, tmp_path=tmp_path)


@pytest.mark.parametrize("story", sorted((REPO / "docs").glob("*.json")), ids=lambda p: p.name)
def test_every_story_file_renders_strictly(story, tmp_path):
    run(f"shotstream render {story} --no-out --prompt-mode strict", reduced=True, tmp_path=tmp_path)


def test_no_doc_setup_or_test_names_a_file_outside_the_repository():
    outside = re.compile(r"\.\./shared|\bissue \d+\b|environment\.md|/work/")
    files = [*DOCS, REPO / "setup.py", *sorted((REPO / "tests").glob("*.py"))]
    offenders = [f"{path.name}:{n}" for path in files if path != Path(__file__)
                 for n, line in enumerate(path.read_text().splitlines(), 1) if outside.search(line)]
    assert offenders == []
