"""Screen layout and everything drawn over the game: the cutscene panel, its HUD, banners and hints.

Layout: the map on the left (world pixels scaled by `MAP_ZOOM`), a column on the right holding the
cutscene (model frames scaled by `scale`, nearest neighbour), the prompt of the shot on screen, the
stream's figures (playback fps, buffered frames, model time per chunk, connection) and a log of the
last game events.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pygame

from demo_game import art, world
from demo_game.cutscene import THUMBNAILS, Cutscene

MAP_ZOOM = 2
PROMPT_LINES = 3
PAD = 16
HINT_BAR = 32  # the controls strip under the map
TEXT_BELOW = 216  # panel height under the cutscene: filmstrip, prompt, figures, event log
FRAME_PX = 64  # the tiny model's frame size; larger frames are scaled to fit the same panel
INK, DIM, GOLD, RED, GREEN = (240, 236, 220), (150, 146, 170), (250, 210, 60), (235, 64, 64), (110, 220, 120)
PANEL_BG, PANEL_DARK, FRAME_EDGE = (30, 26, 44), (18, 15, 28), (120, 84, 40)


@dataclass(frozen=True)
class Layout:
    scale: int

    @property
    def map_rect(self) -> pygame.Rect:
        return pygame.Rect(0, 0, world.MAP_W * MAP_ZOOM, world.MAP_H * MAP_ZOOM)

    @property
    def panel_rect(self) -> pygame.Rect:
        return pygame.Rect(self.map_rect.right, 0, FRAME_PX * self.scale + 2 * PAD, self.size[1])

    @property
    def hint_rect(self) -> pygame.Rect:
        return pygame.Rect(0, self.map_rect.bottom, self.map_rect.width, self.size[1] - self.map_rect.bottom)

    @property
    def video_rect(self) -> pygame.Rect:
        side = FRAME_PX * self.scale
        return pygame.Rect(self.map_rect.right + PAD, 40, side, side)

    @property
    def size(self) -> tuple[int, int]:
        width = self.map_rect.width + FRAME_PX * self.scale + 2 * PAD
        height = max(self.map_rect.height + HINT_BAR, 40 + FRAME_PX * self.scale + TEXT_BELOW)
        return width + width % 2, height + height % 2  # even sizes for yuv420p video


class Hud:
    def __init__(self, layout: Layout):
        self.layout = layout
        self.big = art.Text(26)
        self.text = art.Text(20)
        self.small = art.Text(17)
        self.log: deque[tuple[str, tuple[int, int, int]]] = deque(maxlen=2)
        self.banner = ""
        self.banner_left = 0.0
        self.status = "starting"

    def say(self, line: str, colour: tuple[int, int, int] = INK) -> None:
        self.log.append((line, colour))

    def show_banner(self, text: str, seconds: float = 2.5) -> None:
        self.banner, self.banner_left = text, seconds

    def update(self, dt: float) -> None:
        self.banner_left = max(0.0, self.banner_left - dt)

    # -- the right-hand column ---------------------------------------------------------------------------
    def draw_panel(self, screen: pygame.Surface, cutscene: Cutscene, connection: str) -> None:
        panel = self.layout.panel_rect
        screen.fill(PANEL_BG, panel)
        pygame.draw.line(screen, PANEL_DARK, panel.topleft, panel.bottomleft, 3)
        self.big.draw(screen, "SHOTSTREAM", (panel.x + PAD, 12), GOLD)
        subtitle = "live cutscenes"
        self.small.draw(screen, subtitle, (panel.right - PAD - self.small.font.size(subtitle)[0], 16), DIM)
        self._draw_video(screen, cutscene)
        y = self._draw_filmstrip(screen, cutscene, self.layout.video_rect.bottom + 12)
        y = self._draw_prompt(screen, cutscene, y + 6)
        y = self._draw_figures(screen, cutscene, connection, y + 6)
        self._draw_log(screen, y + 4)

    def _draw_video(self, screen: pygame.Surface, cutscene: Cutscene) -> None:
        box = self.layout.video_rect
        pygame.draw.rect(screen, PANEL_DARK, box.inflate(12, 12))
        pygame.draw.rect(screen, FRAME_EDGE, box.inflate(8, 8), 3)
        pygame.draw.rect(screen, GOLD, box.inflate(8, 8), 1)
        if cutscene.image is None:
            self._placeholder(screen, box)
            return
        screen.blit(pygame.transform.scale(cutscene.image, box.size), box)
        if cutscene.showing is not None:
            shot = cutscene.showing
            tag = f"SHOT {shot.shot_id}" + (f"  {shot.event}" if shot.event else "")
            self.small.draw(screen, tag, (box.x + 6, box.y + 5), INK)
        if cutscene.playback_fps > 0:
            pygame.draw.circle(screen, RED, (box.right - 40, box.y + 11), 4)
            self.small.draw(screen, "LIVE", (box.right - 32, box.y + 5), INK)
        bar = pygame.Rect(box.x, box.bottom + 2, box.width, 3)
        pygame.draw.rect(screen, PANEL_DARK, bar)
        pygame.draw.rect(screen, GOLD, (bar.x, bar.y, int(bar.width * cutscene.progress), bar.height))

    def _placeholder(self, screen: pygame.Surface, box: pygame.Rect) -> None:
        screen.fill((22, 20, 34), box)
        for i in range(0, box.height, 4):  # scanlines
            pygame.draw.line(screen, (28, 25, 42), (box.x, box.y + i), (box.right - 1, box.y + i))
        lines = ("no cutscene yet", "", "walk into a place", "or press SPACE")
        y = box.centery - len(lines) * self.text.height // 2
        for line in lines:
            width = self.text.font.size(line)[0]
            self.text.draw(screen, line, (box.centerx - width // 2, y), DIM)
            y += self.text.height

    def _draw_filmstrip(self, screen: pygame.Surface, cutscene: Cutscene, y: int) -> int:
        """The story so far: the last frame shown of each recent shot, the one playing outlined."""
        box = self.layout.video_rect
        gap = 4
        side = (box.width - gap * (THUMBNAILS - 1)) // THUMBNAILS
        for i in range(THUMBNAILS):
            cell = pygame.Rect(box.x + i * (side + gap), y, side, side)
            if i < len(cutscene.thumbnails):
                shot_id, image = cutscene.thumbnails[i]
                screen.blit(pygame.transform.scale(image, cell.size), cell)
                playing = cutscene.showing is not None and shot_id == cutscene.showing.shot_id
                pygame.draw.rect(screen, GOLD if playing else FRAME_EDGE, cell.inflate(4, 4), 2)
            else:
                pygame.draw.rect(screen, PANEL_DARK, cell)
        return y + side

    def _draw_prompt(self, screen: pygame.Surface, cutscene: Cutscene, y: int) -> int:
        x, width = self.layout.video_rect.x, self.layout.video_rect.width
        shot = cutscene.showing
        text = f'"{shot.prompt}"' if shot and shot.prompt else "the shot's prompt appears here"
        limit = PROMPT_LINES - 1 if shot and shot.dropped else PROMPT_LINES
        lines = self.text.wrap(text, width, limit)
        for line in lines + [""] * (limit - len(lines)):
            self.text.draw(screen, line, (x, y), INK if shot and shot.prompt else DIM)
            y += self.text.height
        if shot and shot.dropped:  # what the model read is the rest
            left_out = self.text.wrap("left out: " + ", ".join(shot.dropped), width, 1)[0]
            self.text.draw(screen, left_out, (x, y), GOLD)
            y += self.text.height
        return y

    def _draw_figures(self, screen: pygame.Surface, cutscene: Cutscene, connection: str, y: int) -> int:
        x = self.layout.video_rect.x
        half = self.layout.video_rect.width // 2
        fps = cutscene.playback_fps
        shown = ("buffering", GOLD) if cutscene.buffering else (f"{fps:4.1f} fps", GREEN if fps else DIM)
        rows = (
            (("playback", *shown),
             ("buffered", f"{len(cutscene.buffer)} frames", INK)),
            (("model", f"{cutscene.chunk_gen_s * 1000:.0f} ms/chunk" if cutscene.chunk_gen_s else "-", INK),
             ("shown", f"{cutscene.frames_shown} frames", INK)),
        )
        for row in rows:
            for i, (name, value, colour) in enumerate(row):
                right = x + (i + 1) * half - (12 if i == 0 else 0)
                self.small.draw(screen, name, (x + i * half, y), DIM)
                self.small.draw(screen, value, (right - self.small.font.size(value)[0], y), colour)
            y += self.small.height + 2
        colour = GREEN if connection.startswith("live") else (RED if connection.startswith("error") else GOLD)
        self.small.draw(screen, "server", (x, y), DIM)
        self.small.draw(screen, connection, (x + 62, y), colour)
        return y + self.small.height + 2

    def _draw_log(self, screen: pygame.Surface, y: int) -> None:
        x = self.layout.video_rect.x
        pygame.draw.line(screen, PANEL_DARK, (x, y), (x + self.layout.video_rect.width, y), 2)
        y += 6
        for line, colour in self.log:
            self.small.draw(screen, self.small.wrap(line, self.layout.video_rect.width, 1)[0], (x, y), colour)
            y += self.small.height

    # -- over the map ---------------------------------------------------------------------------------
    def draw_map_overlay(self, screen: pygame.Surface, hint: str, autoplay: bool, bubble: tuple | None,
                         line: str | None = None) -> None:
        """Signs, the bubble, the banner, and the strip under the map: the controls, or the line being typed."""
        area = self.layout.map_rect
        for place in world.PLACES:
            x, y = place.sign
            self._sign(screen, place.label, (x * MAP_ZOOM, y * MAP_ZOOM))
        if bubble is not None:
            text, (wx, wy) = bubble
            self._bubble(screen, text, (wx * MAP_ZOOM, wy * MAP_ZOOM))
        if self.banner_left > 0:
            width = self.big.font.size(self.banner)[0] + 40
            box = pygame.Rect(area.centerx - width // 2, 14, width, 34)
            self._box(screen, box)
            self.big.draw(screen, self.banner, (box.x + 20, box.y + 7), GOLD)
        strip = self.layout.hint_rect
        screen.fill(PANEL_DARK, strip)
        y = strip.centery - self.small.height // 2
        if line is not None:
            shown = f"what happens next? {line}_"
            while self.small.font.size(shown)[0] > strip.width - 20:  # keep the end, where the typing is
                shown = "..." + shown[4:]
            self.small.draw(screen, shown, (strip.x + 10, y), GOLD)
            return
        self.small.draw(screen, hint, (strip.x + 10, y), INK)
        if autoplay:
            self.small.draw(screen, "AUTOPLAY", (strip.right - 10 - self.small.font.size("AUTOPLAY")[0], y), GOLD)

    def _sign(self, screen: pygame.Surface, text: str, centre: tuple[int, int]) -> None:
        width, height = self.small.font.size(text)
        box = pygame.Rect(0, 0, width + 10, height + 4)
        box.center = centre
        box.clamp_ip(self.layout.map_rect)
        shade = pygame.Surface(box.size, pygame.SRCALPHA)
        shade.fill((20, 16, 30, 150))
        screen.blit(shade, box)
        self.small.draw(screen, text, (box.x + 5, box.y + 2), INK)

    def _bubble(self, screen: pygame.Surface, text: str, anchor: tuple[int, int]) -> None:
        width = self.small.font.size(text)[0] + 14
        box = pygame.Rect(anchor[0] - width // 2, anchor[1] - 64, width, 22)
        box.clamp_ip(self.layout.map_rect)
        self._box(screen, box)
        self.small.draw(screen, text, (box.x + 7, box.y + 4), INK)

    @staticmethod
    def _box(screen: pygame.Surface, box: pygame.Rect) -> None:
        pygame.draw.rect(screen, art.OUTLINE, box.inflate(4, 4))
        pygame.draw.rect(screen, PANEL_BG, box)
        pygame.draw.rect(screen, FRAME_EDGE, box, 2)
