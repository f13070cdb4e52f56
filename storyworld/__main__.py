"""Command line: `python -m storyworld generate ...` and `python -m storyworld contact-sheet ...`."""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import time
from pathlib import Path

from tqdm import tqdm

from storyworld.dataset import generate_one, write_manifest

log = logging.getLogger("storyworld")


def _generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    counts = {"train": args.stories, "heldout": args.heldout if args.heldout is not None
              else max(1, args.stories // 10)}
    write_manifest(out, args.seed, counts)
    jobs = [(args.seed, split, i, str(out)) for split, n in counts.items() for i in range(n)]
    start, shots = time.perf_counter(), 0
    bar = tqdm(total=len(jobs), unit="story", desc="rendering")
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            for n in pool.imap_unordered(generate_one, jobs, chunksize=4):
                shots += n
                bar.update()
    else:
        for job in jobs:
            shots += generate_one(job)
            bar.update()
    bar.close()
    wall = time.perf_counter() - start
    log.info("wrote %d stories (%d shots) to %s in %.1f s: %.1f stories/s",
             len(jobs), shots, out, wall, len(jobs) / wall)
    return 0


def _contact_sheet(args: argparse.Namespace) -> int:
    from storyworld.contact_sheet import write_contact_sheet

    write_contact_sheet(Path(args.out), seed=args.seed, stories=args.stories)
    log.info("wrote %s", args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storyworld", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="render a data set (train + held-out splits)")
    gen.add_argument("--stories", type=int, required=True, help="stories in the train split")
    gen.add_argument("--heldout", type=int, default=None, help="held-out stories (default stories/10)")
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--seed", type=int, default=0, help="data seed: same seed, same data set (default 0)")
    gen.add_argument("--workers", type=int, default=1, help="processes (the output does not depend on it)")
    gen.set_defaults(run=_generate)
    sheet = sub.add_parser("contact-sheet", help="a PNG grid of a few stories with their captions")
    sheet.add_argument("--out", default="docs/storyworld_contact_sheet.png",
                       help="PNG to write (default docs/storyworld_contact_sheet.png)")
    sheet.add_argument("--seed", type=int, default=0, help="data seed of the stories drawn (default 0)")
    sheet.add_argument("--stories", type=int, default=3, help="stories drawn, one per row (default 3)")
    sheet.set_defaults(run=_contact_sheet)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
