"""A contact sheet: a few stories as a PNG grid, one row per shot, with their captions.

For eyeballing the world: each row shows frames 0, 20, 40, 60 and 80 of one shot, enlarged,
and the shot's caption beside them; each story starts with its global caption.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from storyworld.captions import story_captions
from storyworld.constants import FRAME_SIZE, FRAMES_PER_SHOT
from storyworld.render import render_shot
from storyworld.sampling import sample_story

SCALE = 2
TIMES = tuple(round(i * (FRAMES_PER_SHOT - 1) / 4) for i in range(5))
TEXT_WIDTH = 560
GAP = 4
_BACKDROP = (24, 24, 30)
_INK = (235, 235, 235)
_HEAD_INK = (250, 215, 110)


def label_font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _story_rows(seed: int, index: int) -> list[tuple[str, np.ndarray | None]]:
    """[(text, frames strip or None for a heading)] for one story."""
    story = sample_story(seed, "train", index)
    captions = story_captions(story)
    rows: list[tuple[str, np.ndarray | None]] = [(captions["global_caption"], None)]
    for i in range(len(story.shots)):
        frames, _ = render_shot(story, i, TIMES)
        big = frames.repeat(SCALE, axis=1).repeat(SCALE, axis=2)
        strip = np.concatenate([np.pad(f, ((0, 0), (0, GAP), (0, 0))) for f in big], axis=1)
        rows.append((f"shot{i + 1}: {captions[f'shot{i + 1}']}", strip))
    return rows


def write_contact_sheet(out: Path, seed: int = 0, stories: int = 3) -> None:
    rows = [row for k in range(stories) for row in _story_rows(seed, k)]
    strip_w = len(TIMES) * (FRAME_SIZE * SCALE + GAP)
    row_h, head_h = FRAME_SIZE * SCALE + GAP, 26
    height = sum(head_h if strip is None else row_h for _, strip in rows) + GAP
    sheet = Image.new("RGB", (strip_w + TEXT_WIDTH + 2 * GAP, height), _BACKDROP)
    draw, font, bold = ImageDraw.Draw(sheet), label_font(13), label_font(15)
    y = GAP
    for text, strip in rows:
        if strip is None:
            draw.text((GAP, y + 5), text, fill=_HEAD_INK, font=bold)
            y += head_h
            continue
        sheet.paste(Image.fromarray(strip), (GAP, y))
        draw.multiline_text((strip_w + 2 * GAP, y + 6), "\n".join(textwrap.wrap(text, 70)),
                            fill=_INK, font=font, spacing=3)
        y += row_h
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
