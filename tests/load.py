"""Keeps every core of the machine busy for a bounded time: the load under which the whole suite must still pass
(no test may depend on the machine being fast).

    python tests/load.py --seconds 3600 &        # one busy process per core, ends by itself
    python -m pytest -q -m "not slow"
    kill %1                                      # or let it end at its deadline

Each worker spins on integer and floating-point arithmetic and checks the deadline and its parent every
~50 ms, so it also stops when the process that started it is gone.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import time


def _spin(deadline: float, parent: int) -> None:
    x = 1.0
    while time.monotonic() < deadline and os.getppid() == parent:
        stop = time.monotonic() + 0.05
        while time.monotonic() < stop:
            for i in range(2000):
                x = (x * 1.000001 + i) % 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1800.0, help="how long to keep the cores busy (default 1800)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="busy processes (default: one a core)")
    args = ap.parse_args()
    deadline = time.monotonic() + args.seconds
    workers = [mp.Process(target=_spin, args=(deadline, os.getpid()), daemon=True) for _ in range(args.workers)]
    for w in workers:
        w.start()
    signal.signal(signal.SIGTERM, lambda *_: [w.terminate() for w in workers])
    print(f"load: {args.workers} busy processes for {args.seconds:g} s (pids {' '.join(str(w.pid) for w in workers)})",
          flush=True)
    for w in workers:
        w.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
