"""tests/cli_runner.py, which the command-line tests run their commands through, behaves as a fresh interpreter
started by subprocess.run would: the same exit status, output, working folder, environment and start method for
the command's own worker processes, and a child that outlives its timeout is killed."""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import nullcontext

import pytest

import cli_runner

CODE = """
import multiprocessing, os, sys
print(os.getcwd(), os.environ.get("CLI_RUNNER_TEST"), multiprocessing.get_start_method(), sys.argv[1:])
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize("status", [0, 3])
def test_a_command_gives_what_a_fresh_interpreter_gives(tmp_path, status):
    args = [sys.executable, "-c", CODE, str(status), "two words"]
    env = {"CLI_RUNNER_TEST": "seen", "PATH": "/usr/bin:/bin"}
    fresh = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    forked = cli_runner.run(args, cwd=tmp_path, env=env, timeout=60)
    assert fresh.stdout == forked.stdout == f"{tmp_path} seen fork ['{status}', 'two words']\n"
    assert (forked.returncode, forked.stderr) == (fresh.returncode, fresh.stderr) == (status, "to stderr\n")
    with pytest.raises(subprocess.CalledProcessError) if status else nullcontext():
        cli_runner.run(args, cwd=tmp_path, env=env, timeout=60, check=True)


def test_a_script_runs_as_main_with_its_folder_first_on_the_path(tmp_path):
    (tmp_path / "helper.py").write_text("NAME = 'helper beside the script'\n")
    script = tmp_path / "script.py"
    script.write_text("import sys, helper\nprint(__name__, helper.NAME, sys.argv[1:])\n")
    args = [sys.executable, str(script), "x"]
    fresh = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert cli_runner.run(args, timeout=60).stdout == fresh.stdout == "__main__ helper beside the script ['x']\n"


def test_an_uncaught_exception_is_status_1_with_its_traceback():
    done = cli_runner.run([sys.executable, "-c", "raise KeyError('lost')"], timeout=60)
    assert done.returncode == 1 and "Traceback" in done.stderr and "KeyError: 'lost'" in done.stderr


def test_a_command_past_its_timeout_is_killed():
    started = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        cli_runner.run([sys.executable, "-c", "import time; print('begun', flush=True); time.sleep(60)"], timeout=2)
    assert time.perf_counter() - started < 30


def test_only_commands_of_this_interpreter_are_taken():
    with pytest.raises(ValueError, match="-m MODULE"):
        cli_runner.run(["bash", "-c", "true"])
