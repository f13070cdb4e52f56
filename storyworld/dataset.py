"""Data sets on disk: rendering stories to compact, byte-reproducible files, and reading them back.

Layout of a data set folder:
  manifest.json                     seed, split sizes, geometry, held-out compositions
  {split}.csv                       official index: shot_num_from_caption,json_path,frame_number,video_path
  {split}/story_000123.npz          frames uint8 (shots, 81, 64, 64, 3), boxes int16 (shots, 81, cast, 4)
  {split}/story_000123.json         captions, official format {"global_caption", "shot1", ...}
  {split}/story_000123.labels.json  the structured story (re-renderable) and per-shot labels
Splits: `train`, and `heldout`, whose every story holds a composition that training never shows.
Nothing written depends on time, worker count or order, so the same seed gives identical bytes.
"""
from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from storyworld.captions import story_captions
from storyworld.constants import FPS, FRAME_SIZE, FRAMES_PER_SHOT
from storyworld.render import render_story
from storyworld.sampling import sample_story
from storyworld.story import HALF, Story
from storyworld.world import held_out_compositions

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps keep archives byte-identical


def _position(sx: float) -> str:
    return "left" if sx < HALF - 8 else ("right" if sx > HALF + 8 else "middle")


def shot_labels(story: Story) -> list[dict]:
    """Readable per-shot labels: place, time, framing, camera, action, and who is visible where."""
    out = []
    for shot in story.shots:
        mid = FRAMES_PER_SHOT // 2
        visible = []
        for a in shot.actors:
            m = story.cast[a.member]
            sx, _ = shot.camera.to_screen(mid, *a.position(mid, 0.0))
            visible.append({"member": a.member, "character": m.kind, "colour": m.colour, "name": m.name,
                            "action": a.action, "position": _position(sx),
                            "facing": "right" if a.facing > 0 else "left"})
        out.append({"place": shot.place, "time": shot.time, "framing": shot.framing,
                    "camera": shot.camera.move, "camera_direction": shot.camera.direction,
                    "action": shot.action, "subject": visible[0]["name"],
                    "held_out_composition": shot.held_out, "visible": visible})
    return out


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz (readable by np.load) with fixed metadata, deflated at a fast level."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=1)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")


def write_story(story: Story, folder: Path) -> int:
    """Render one story into `folder`; returns its number of shots."""
    frames, boxes = render_story(story)
    stem = folder / f"story_{story.index:06d}"
    _write_npz(stem.with_suffix(".npz"), {"frames": frames, "boxes": boxes})
    _write_json(stem.with_suffix(".json"), story_captions(story))
    _write_json(stem.with_name(stem.name + ".labels.json"),
                {"story": story.to_dict(), "shots": shot_labels(story)})
    return len(story.shots)


def generate_one(job: tuple[int, str, int, str]) -> int:
    """Worker entry point: (seed, split, index, out_dir) -> shots written."""
    seed, split, index, out = job
    return write_story(sample_story(seed, split, index), Path(out) / split)


def _index_csv(out: Path, split: str, count: int, seed: int) -> None:
    lines = ["shot_num_from_caption,json_path,frame_number,video_path"]
    for i in range(count):
        n = len(sample_story(seed, split, i).shots)
        ranges = [[k * FRAMES_PER_SHOT, (k + 1) * FRAMES_PER_SHOT] for k in range(n)]
        lines.append(f'{n},{split}/story_{i:06d}.json,"{ranges}",{split}/story_{i:06d}.npz')
    (out / f"{split}.csv").write_text("\n".join(lines) + "\n")


def write_manifest(out: Path, seed: int, counts: dict[str, int]) -> None:
    for split, n in counts.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        _index_csv(out, split, n, seed)
    _write_json(out / "manifest.json", {
        "format": FORMAT_VERSION, "seed": seed, "splits": counts,
        "frame_size": FRAME_SIZE, "fps": FPS, "frames_per_shot": FRAMES_PER_SHOT,
        "held_out_compositions": [list(t) for t in held_out_compositions()]})


def load_story(npz_path: str | Path) -> tuple[np.ndarray, np.ndarray, dict, Story]:
    """(frames, boxes, captions, story) of one stored story."""
    p = Path(npz_path)
    with np.load(p) as z:
        frames, boxes = z["frames"], z["boxes"]
    captions = json.loads(p.with_suffix(".json").read_text())
    labels = json.loads(p.with_name(p.stem + ".labels.json").read_text())
    return frames, boxes, captions, Story.from_dict(labels["story"])
