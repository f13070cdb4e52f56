"""The README's pictures of the demo from a recorded run: an animation and a screenshot.

Run: shotstream demo --autoplay --seconds 28 --record out/tour.mp4
     python build/demo_media.py out/tour.mp4 --animation docs/demo.webp --screenshot docs/demo_screenshot.png --at 11
The animation keeps every `--every`-th frame of the span [--start, --end) seconds at `--scale` (Pillow): an
animated WebP (lossy, `--quality`; a tenth of a GIF's bytes at full size) or, by its suffix, a GIF (a palette
per frame). The screenshot is the frame at `--at` seconds, full size.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path, help="a recording of `shotstream demo --record`")
    ap.add_argument("--animation", type=Path, required=True, help="an animated .webp or .gif")
    ap.add_argument("--screenshot", type=Path)
    ap.add_argument("--at", type=float, default=10.0, help="screenshot time (s)")
    ap.add_argument("--start", type=float, default=0.0)
    ap.add_argument("--end", type=float, default=None)
    ap.add_argument("--every", type=int, default=2, help="keep one frame in this many")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--quality", type=int, default=70, help="WebP quality, 0..100 (default 70)")
    args = ap.parse_args()
    import imageio.v2 as imageio

    reader = imageio.get_reader(args.video)
    fps = float(reader.get_meta_data()["fps"])
    kept, shot = [], None
    for i, frame in enumerate(reader):
        t = i / fps
        if args.screenshot is not None and shot is None and t >= args.at:
            shot = frame
        if t < args.start or (args.end is not None and t >= args.end) or i % args.every:
            continue
        image = Image.fromarray(np.asarray(frame))
        kept.append(image.resize((int(image.width * args.scale), int(image.height * args.scale)), Image.LANCZOS))
    reader.close()
    if not kept:
        raise SystemExit(f"no frames of {args.video} in [{args.start}, {args.end})")
    args.animation.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": args.quality, "method": 4} if args.animation.suffix.lower() == ".webp" else {"optimize": True}
    kept[0].save(args.animation, save_all=True, append_images=kept[1:], duration=int(1000 * args.every / fps), loop=0,
                 **options)
    print(f"{args.animation}: {len(kept)} frames of {kept[0].width}x{kept[0].height}, "
          f"{args.animation.stat().st_size / 1e6:.1f} MB")
    if args.screenshot is not None:
        if shot is None:
            raise SystemExit(f"{args.video} is shorter than --at {args.at} s")
        Image.fromarray(np.asarray(shot)).save(args.screenshot)
        print(f"{args.screenshot}: frame at {args.at} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
