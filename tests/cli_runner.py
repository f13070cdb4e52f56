"""`python -m MODULE ARGS` (or `-c CODE`, or `SCRIPT.py`) as `subprocess.run` runs it, without paying the imports
every time.

Most of a short command's time in the tests is importing torch, onnxruntime and the runtime (about 2 s on two
cores), and the suite runs a hundred of them. `run` forks each command from a warm server process (multiprocessing's
forkserver, started once per test session) that has imported those modules and done nothing else: no thread,
no engine, no compute. The child then does what the interpreter would: takes the given environment and working
folder, points stdout and stderr at files, runs the module as `__main__`, and exits with its status. What is
under test runs for real in its own process; only the imports are shared.

Not for commands that must see an environment variable at import time (OMP_NUM_THREADS and the like are read
when torch loads), that run servers stopped by a signal, or that rely on atexit handlers: use subprocess there.
"""
from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

# Imported once by the server; a module missing here is imported by the child itself, as a fresh process would.
# Never a module that is itself run (runpy warns when it is imported already), nor grpc or pygame.
# torch._dynamo: torch.optim imports it when a training command makes its first optimizer (about 1.5 s).
PRELOAD = ["numpy", "torch", "torch._dynamo", "onnxruntime", "PIL.Image", "safetensors.torch", "tqdm", "runtime",
           "runtime.cli_options", "distill.eval_cli", "distill.train_cli", "distill.story_eval", "distill.sampling",
           "storyworld.probe"]
_context = None


def _forkserver():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _child(how: str, what: str, args: list[str], cwd: str, env: dict[str, str], stdout: str, stderr: str) -> None:
    multiprocessing.set_start_method(None, force=True)  # the platform's default again, as in a fresh interpreter
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, stdout), (2, stderr)):
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(opened, fd)
        os.close(opened)
    if how == "-c":
        sys.argv = ["-c", *args]
        exec(compile(what, "<string>", "exec"), {"__name__": "__main__"})
    elif how == "script":
        sys.argv = [what, *args]
        sys.path.insert(0, os.path.dirname(what))  # as the interpreter puts a script's folder first
        runpy.run_path(what, run_name="__main__")
    else:
        sys.argv = [what, *args]
        runpy.run_module(what, run_name="__main__", alter_sys=True)
    # SystemExit(code) becomes the exit status, an uncaught exception its traceback on stderr and status 1


def run(args: list[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    """`args` as given to subprocess.run: [sys.executable, "-m", MODULE, ...], [sys.executable, "-c", CODE, ...] or
    [sys.executable, "path/to/script.py", ...]; stdout and stderr come back as text. Raises
    subprocess.TimeoutExpired (the child killed) or, with check, CalledProcessError."""
    args = [str(a) for a in args]
    script = len(args) >= 2 and args[1].endswith(".py")
    if args[:1] != [sys.executable] or not (script or (len(args) >= 3 and args[1] in ("-m", "-c"))):
        raise ValueError(f"cli_runner runs `{sys.executable} -m MODULE|-c CODE|SCRIPT.py ...`, not {args}")
    how, what, rest = ("script", args[1], args[2:]) if script else (args[1], args[2], args[3:])
    with tempfile.TemporaryDirectory(prefix="cli-runner-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        env = dict(os.environ if env is None else env)
        child = _forkserver().Process(target=_child, args=(how, what, rest, str(cwd or os.getcwd()), env, str(out),
                                                           str(err)))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(args, timeout, _read(out), _read(err))
        done = subprocess.CompletedProcess(args, child.exitcode, _read(out), _read(err))
    if check:
        done.check_returncode()
    return done


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
