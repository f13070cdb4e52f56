"""Progress bars for long work (tqdm on stderr), one place so every command looks the same."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def progress(total: int, desc: str, unit: str = "it", disable: bool = False):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, leave=False)
    try:
        yield bar
    finally:
        bar.close()
