"""Pixel art for the demo: the palette, character sprites drawn from text maps, and the text helpers.

Everything is drawn at "world pixel" resolution (one map pixel = `MAP_ZOOM` screen pixels, applied by
the caller with a nearest-neighbour scale), so the whole game keeps one chunky pixel size. Sprites are
tiny text maps, one character per pixel, coloured through `PALETTE`; '.' is transparent. The colours
follow the story world the model is trained on (red knight, blue wizard, green dragon),
so a trained model's cutscenes match the characters walking on the map.
"""
from __future__ import annotations

import pygame

RGB = tuple[int, int, int]

OUTLINE: RGB = (28, 22, 38)
PALETTE: dict[str, RGB] = {
    "o": OUTLINE,
    "S": (245, 200, 160),   # skin
    "H": (196, 202, 216),   # helmet, armour
    "h": (120, 126, 144),   # armour shade
    "v": (30, 28, 40),      # visor slit, eyes
    "R": (200, 40, 40),     # knight red
    "r": (130, 24, 30),
    "G": (250, 210, 60),    # gold
    "W": (230, 238, 248),   # blade, white
    "B": (96, 62, 40),      # boots, wood
    "U": (50, 70, 200),     # wizard blue
    "u": (30, 40, 130),
    "Y": (250, 220, 70),    # wizard stars
    "w": (236, 236, 236),   # beard
    "D": (60, 170, 60),     # dragon green
    "d": (30, 110, 40),
    "C": (240, 220, 140),   # dragon belly cream
    "F": (250, 110, 20),    # fire
    "f": (255, 230, 80),
}

_KNIGHT_BODY = (
    "....oooo....",
    "...oHHHHo...",
    "..oHHHHHHo..",
    "..oHvvvvHo..",
    "..ohHHHHho.W",
    "...oohhoo.oW",
    "..oRRGGRRooW",
    ".oHRRGGRRHoG",
    ".oSRRRRRRSoB",
    "..oRRRRRRo..",
    "..orrrrrro..",
)
KNIGHT_ROWS = {  # the walk cycle only moves the legs
    "stand": _KNIGHT_BODY + ("...oBooBo...", "...oBooBo...", "...oo..oo..."),
    "step": _KNIGHT_BODY + ("...oBooBo...", "..oBo..oBo..", "..oo....oo.."),
}

WIZARD_ROWS = (
    ".....oo.....",
    "....oUUo....",
    "...oUYUUo...",
    "...oUUUUo...",
    "..oUUUUUUo..",
    ".ooooooooooG",
    "..oSvSSvSo.B",
    "..owwSSwwo.B",
    ".oUwwwwwwUoB",
    ".oUUwwwwUUoB",
    ".oSUUUUUUSoB",
    "..oUUYUUUo.B",
    "..ouUUUUuo.B",
    "..oooooooo..",
)

_DRAGON_BELLY = (  # shared by both wing beats
    ".....oDDCCCCCCDDo.....",
    ".....oDDCCCCCCDDoo....",
    "......oDDCCCCDDoDDo...",
    "......odDDDDDDdooDDo..",
    ".....odo.oooo.odo.oDo.",
    ".....ooo......ooo..oo.",
)
DRAGON_ROWS = {
    "up": (
        "..oo..............oo..",
        ".odDo............oDdo.",
        ".odDDo..........oDDdo.",
        "..odDDo..oooo..oDDdo..",
        "..odDDDooDDDDooDDDdo..",
        "...odDDDDDDDDDDDDdo...",
        "....ooDDDvDDvDDDoo....",
        "......oDDDDDDDDo......",
        ".....oDDCCCCCCDDo.....",
    ) + _DRAGON_BELLY,
    "down": (
        "......................",
        "......................",
        "........oooooo........",
        ".......oDDDDDDo.......",
        "..oooooDDvDDvDDooooo..",
        ".odDDDDDDDDDDDDDDDDdo.",
        "odDDDDoDDDDDDDDDoDDDdo",
        "odDoo.oDDDDDDDDDDooDdo",
        ".oo..oDDDCCCCCCDDo.oo.",
    ) + _DRAGON_BELLY,
}


def sprite(rows: tuple[str, ...], palette: dict[str, RGB] = PALETTE) -> pygame.Surface:
    """A surface with per-pixel alpha from a text map; unknown characters are transparent."""
    width = max(len(row) for row in rows)
    surface = pygame.Surface((width, len(rows)), pygame.SRCALPHA)
    for y, row in enumerate(rows):
        for x, key in enumerate(row):
            if key in palette:
                surface.set_at((x, y), palette[key])
    return surface


def shadow(width: int) -> pygame.Surface:
    """A soft oval shadow placed under a character's feet."""
    surface = pygame.Surface((width, max(3, width // 3)), pygame.SRCALPHA)
    pygame.draw.ellipse(surface, (0, 0, 0, 70), surface.get_rect())
    return surface


def scaled(surface: pygame.Surface, factor: int) -> pygame.Surface:
    """Nearest-neighbour enlargement (keeps pixel art crisp)."""
    w, h = surface.get_size()
    return pygame.transform.scale(surface, (w * factor, h * factor))


class Text:
    """Text with a one-pixel drop shadow, readable over the map and over frames."""

    def __init__(self, size: int):
        self.font = pygame.font.Font(None, size)
        self.height = self.font.get_linesize()

    def draw(self, target: pygame.Surface, text: str, pos: tuple[int, int], colour: RGB = (240, 236, 220),
             shade: RGB | None = OUTLINE) -> pygame.Rect:
        if shade is not None:
            target.blit(self.font.render(text, True, shade), (pos[0] + 1, pos[1] + 1))
        return target.blit(self.font.render(text, True, colour), pos)

    def wrap(self, text: str, width: int, max_lines: int) -> list[str]:
        """Greedy word wrap to `width` pixels; the last line ends with '...' when text is cut."""
        lines: list[str] = []
        line = ""
        for word in text.split():
            candidate = f"{line} {word}".strip()
            if self.font.size(candidate)[0] <= width or not line:
                line = candidate
                continue
            lines.append(line)
            line = word
        if line:
            lines.append(line)
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] = lines[-1].rstrip(".,") + "..."
        return lines
