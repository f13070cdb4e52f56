"""The story eval's contact sheet: the same held-out stories as every row made them, one strip per row.

Per story: a heading (its index and global caption), a line naming each shot's place, then one strip per row,
labelled with the row's name: frames SHEET_TIMES of every shot, enlarged, shot after shot, so a row's cast and
places can be compared with the truth's at a glance.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from storyworld.contact_sheet import label_font

SHEET_STORIES = 3
SHEET_TIMES = (10, 70)  # frames shown per shot: early and late, so motion and drift within a shot show
SCALE, GAP, LABEL_W = 2, 4, 118
_BACKDROP, _INK, _HEAD_INK, _SHOT_GAP = (24, 24, 30), (235, 235, 235), (250, 215, 110), 10


def _strip(shots: list[np.ndarray]) -> np.ndarray:
    """(H, W, 3): the SHEET_TIMES frames of each shot side by side, a wider gap between shots."""
    parts = []
    for shot in shots:
        for t in SHEET_TIMES:
            frame = shot[min(t, len(shot) - 1)].repeat(SCALE, 0).repeat(SCALE, 1)
            parts.append(np.pad(frame, ((0, 0), (0, GAP), (0, 0)), constant_values=_BACKDROP[0]))
        parts.append(np.full((parts[-1].shape[0], _SHOT_GAP, 3), _BACKDROP[0], np.uint8))
    return np.concatenate(parts, axis=1)


def row_label(row: str) -> list[str]:
    """A row's name in at most two short lines: `teacher:distill/weights/teacher-tiny-p1.safetensors` as its kind
    and its file's stem (with the folder where the stem says no more than the kind), so that two weights files of
    one kind stay told apart; other rows as they are."""
    kind, _, path = row.partition(":")
    if not path:
        return [_fit(row)]
    weights = Path(path)
    stem = weights.stem if weights.stem not in (kind, "teacher", "student") else f"{weights.parent.name}/{weights.stem}"
    return [kind, _fit(stem)]


def _fit(text: str, most: int = 17) -> str:
    return text if len(text) <= most else "..." + text[-(most - 3):]


def write_story_sheet(path: str | Path, stories, rows: dict[str, list[list[np.ndarray]]],
                      count: int = SHEET_STORIES) -> None:
    """Draw the first `count` stories (EvalStory) of the set as each row in `rows` made them."""
    picked = stories[:count]
    frame = picked[0].truth[0].shape[1] * SCALE  # a shot is (T, H, W, 3)
    shot_w = len(SHEET_TIMES) * (frame + GAP) + _SHOT_GAP
    width = LABEL_W + max(len(s.truth) for s in picked) * shot_w
    head_h, places_h, row_h = 36, 16, frame + GAP
    height = len(picked) * (head_h + places_h + len(rows) * row_h + 2 * GAP)
    sheet = Image.new("RGB", (width, height), _BACKDROP)
    draw, font, bold = ImageDraw.Draw(sheet), label_font(12), label_font(14)
    y = GAP
    for pos, s in enumerate(picked):
        heading = f"held-out story {s.index}: {s.captions['global_caption']}"
        draw.multiline_text((GAP, y), "\n".join(textwrap.wrap(heading, width // 8)[:2]), fill=_HEAD_INK, font=bold)
        y += head_h
        for k, shot in enumerate(s.story.shots):
            draw.text((LABEL_W + k * shot_w, y), f"shot {k + 1}: {shot.place}", fill=_INK, font=font)
        y += places_h
        for name, made in rows.items():
            draw.multiline_text((GAP, y + frame // 2 - 12), "\n".join(row_label(name)), fill=_INK, font=font)
            sheet.paste(Image.fromarray(_strip(made[pos])), (LABEL_W, y))
            y += row_h
        y += 2 * GAP
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
