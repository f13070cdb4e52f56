"""ShotStream demo game: walk a knight across a small kingdom; every place and every encounter becomes a
cutscene generated live by the model and streamed over gRPC, shot after shot.

The game knows nothing about the model. It reports what happens (`enter_place`, `talk`, `attack`,
`swing`) to the server through the client SDK; the director script `cutscenes.toml` turns each event
into shots, and their frames come back while they are generated. One main loop, one thread:
events -> triggers -> latest frames -> draw -> clock.tick(FPS). The network lives on background
threads behind `Feed` (see feed.py), so nothing here ever waits for it.

Controls:
    arrow keys   walk (during autoplay: take over)
    SPACE        talk to someone next to you, attack the dragon, or swing the sword
    T            type what happens next: ENTER sends the line as the story's next shot (queued after
                 the shots already waiting), ESC drops it. Words the model does not know are left out
                 and shown under the shot's prompt; a line with no known word is refused in the log.
    C            cut: stop the cutscene playing and drop the queued ones
    Q / ESC      quit
"""
from __future__ import annotations

import time
from typing import Callable

import pygame

from demo_game import world
from demo_game.cutscene import Cutscene
from demo_game.hud import Hud, Layout
from demo_game.pilot import Pilot

FPS = 30  # game frames per second (the cutscene itself plays at the story's fps, 16 for the tiny model)
HERO = "red knight"  # the hero as the model knows him
CAPTION = "a red knight, a blue wizard and a green dragon, pixel art style."  # the story world's global caption form
MOVE_KEYS = {pygame.K_LEFT: (-1, 0), pygame.K_RIGHT: (1, 0), pygame.K_UP: (0, -1), pygame.K_DOWN: (0, 1)}
HINT = "arrows: walk   SPACE: talk / attack   T: type   C: cut   Q: quit"
MAX_LINE_CHARS = 160
SWING_S = 0.25


class Game:
    """All the game's state; `step(dt)` advances it by one frame, `run()` loops until quit or time out."""

    def __init__(self, screen: pygame.Surface, feed, *, seed: int = 7, scale: int = 4,
                 pilot: Pilot | None = None, recorder=None, seconds: float | None = None, fixed_step: bool = False,
                 report: Callable[["Game"], None] | None = None):
        """`report`, if given, is called after every step (the headless run prints its progress with it)."""
        self.screen, self.feed = screen, feed
        self.layout = Layout(scale)
        self.hud = Hud(self.layout)
        self.background = world.paint_map(seed)
        self.map = self.background.copy()
        self.hero = world.Hero()
        self.people = world.cast()
        self.cutscene = Cutscene()
        self.pilot, self.recorder = pilot, recorder
        self.seconds, self.fixed_step, self.report = seconds, fixed_step, report
        self.clock = pygame.time.Clock()
        self.held: set[int] = set()
        self.place: world.Place | None = world.place_at(self.hero.x, self.hero.y)
        self.time = 0.0
        self.swing_left = 0.0
        self.line: str | None = None  # the line being typed (T), None when not typing
        self.running = True

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self) -> int:
        deadline = None if self.seconds is None else time.monotonic() + 4 * self.seconds + 60  # a safety net
        while self.running:
            elapsed = self.clock.tick(FPS) / 1000.0
            self.step(1.0 / FPS if self.fixed_step else min(elapsed, 0.1))
            if self.report is not None:
                self.report(self)
            if self.seconds is not None and self.time >= self.seconds - 1e-6:  # float steps: 90 x 1/30 < 3
                self.running = False
            if self.pilot is not None and self.pilot.done and self.cutscene.idle:
                self.running = False
            if deadline is not None and time.monotonic() > deadline:
                self.running = False
        return 0

    def step(self, dt: float) -> None:
        self.time += dt
        press = self.handle_events()
        self.move_and_trigger(dt, press)
        self.receive()
        self.cutscene.update(dt)
        self.hud.update(dt)
        self.swing_left = max(0.0, self.swing_left - dt)
        for person in self.people:
            person.update(dt)
        self.draw()
        if self.recorder is not None:
            self.recorder.add(self.screen)

    # -- input -> game events -----------------------------------------------------------------------------
    def handle_events(self) -> bool:
        """Keyboard and window events; True when SPACE was pressed this frame."""
        press = False
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.running = False
            elif self.line is not None:
                self.type_into_line(event)
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_t:
                self.open_line()
            elif event.type == pygame.KEYDOWN:
                if event.key in (pygame.K_q, pygame.K_ESCAPE):
                    self.running = False
                elif event.key == pygame.K_SPACE:
                    press = True
                elif event.key == pygame.K_c:
                    self.feed.cut()
                    self.hud.say("C: cut, queue dropped", log_colour("cut"))
                elif event.key in MOVE_KEYS:
                    self.held.add(event.key)
                    if self.pilot is not None:
                        self.pilot = None
                        self.hud.say("autoplay off: you have the knight")
            elif event.type == pygame.KEYUP:
                self.held.discard(event.key)
        return press

    def open_line(self) -> None:
        self.line = ""
        self.held.clear()  # the hero stops while the player types
        pygame.key.start_text_input()

    def type_into_line(self, event: pygame.event.Event) -> None:
        """Text goes into the line; ENTER sends it, ESC drops it, BACKSPACE deletes."""
        if event.type == pygame.TEXTINPUT:
            self.line = (self.line + event.text)[:MAX_LINE_CHARS]
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_BACKSPACE:
            self.line = self.line[:-1]
        elif event.type == pygame.KEYDOWN and event.key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_ESCAPE):
            if event.key != pygame.K_ESCAPE and self.line.strip():
                self.feed.say(self.line.strip())
                self.hud.say(f'you: "{self.line.strip()}"', log_colour("ok"))
            self.line = None
            pygame.key.stop_text_input()

    def move_and_trigger(self, dt: float, press: bool) -> None:
        dx = sum(MOVE_KEYS[k][0] for k in self.held)
        dy = sum(MOVE_KEYS[k][1] for k in self.held)
        if self.pilot is not None:
            pdx, pdy, ppress = self.pilot.control(self.hero, self.cutscene.idle, dt)
            dx, dy, press = pdx, pdy, press or ppress
        self.hero.update(dx, dy, dt)
        place = world.place_at(self.hero.x, self.hero.y)
        if place is not None and place is not self.place:
            self.hud.show_banner(place.label)
            self.send("enter_place", hero=HERO, where=place.where)
        self.place = place
        if press:
            self.act()

    def act(self) -> None:
        """SPACE: talk to a friend nearby, attack a foe nearby, or swing at the air."""
        self.swing_left = SWING_S
        near = self.nearby()
        where = (self.place or world.nearest_place(self.hero.x, self.hero.y)).where
        if near is None:
            self.send("swing", hero=HERO, where=where)
        elif near.event == "attack":
            self.send("attack", hero=HERO, foe=near.key, where=where)
            near.react(3.0)
        else:
            self.send("talk", hero=HERO, friend=near.key, where=where)
            near.react()

    def nearby(self) -> world.Character | None:
        close = [c for c in self.people if c.near(self.hero.x, self.hero.y)]
        return min(close, key=lambda c: (c.pos[0] - self.hero.x) ** 2 + (c.pos[1] - self.hero.y) ** 2, default=None)

    def send(self, event: str, **params: str) -> None:
        self.feed.trigger(event, **params)

    # -- what the server sent -----------------------------------------------------------------------------
    def receive(self) -> None:
        for item in self.feed.poll(max_frames=self.cutscene.room):
            kind = type(item).__name__
            if kind == "Frame":
                self.cutscene.accept_frame(item)
            elif kind == "ShotEvent":
                self.cutscene.accept_event(item)
            else:
                self.note(item)

    def note(self, note) -> None:
        if note.kind == "connected" and note.info is not None:
            self.cutscene.fps = note.info.fps or self.cutscene.fps
            self.cutscene.chunk_frames = tuple(note.info.chunk_frames) or self.cutscene.chunk_frames
            self.hud.say(f"connected: {note.text}", log_colour("ok"))
        elif note.kind == "triggered":
            self.cutscene.issued(note.shot_ids, note.interrupt)
            how = "cut in now" if note.interrupt else "queued"
            self.hud.say(f"{note.event}: {len(note.shot_ids)} shots, {how}", log_colour("cut" if note.interrupt else "ok"))
        elif note.kind == "spoken":
            self.cutscene.issued(note.shot_ids, interrupt=False)
            left_out = f"; left out: {', '.join(note.dropped)}" if note.dropped else ""
            self.hud.say(f"your line: shot {note.shot_ids[0]} queued{left_out}",
                         log_colour("cut" if note.dropped else "ok"))
        elif note.kind == "cancelled":
            self.cutscene.cancelled(note.shot_ids)
        elif note.kind == "suppressed":
            self.hud.say(f"{note.event}: cooling down {note.cooldown_s:.1f} s", log_colour("dim"))
        else:
            self.hud.say(f"{note.event or note.kind}: {note.text}", log_colour("error"))

    # -- drawing ----------------------------------------------------------------------------------------
    def draw(self) -> None:
        self.map.blit(self.background, (0, 0))
        world.draw_water_shimmer(self.map, self.time)
        world.draw_flags(self.map, self.time)
        sprites = [(c.pos[1], c) for c in self.people] + [(self.hero.y, self.hero)]
        for _, thing in sorted(sprites, key=lambda item: item[0]):
            if thing is self.hero:
                self.hero.draw(self.map)
                if self.swing_left > 0:
                    world.draw_swing(self.map, self.hero, 1 - self.swing_left / SWING_S)
            else:
                thing.draw(self.map, self.time)
        for person in self.people:
            person.draw_reaction(self.map, self.time)
        self.screen.blit(pygame.transform.scale(self.map, self.layout.map_rect.size), (0, 0))
        near = self.nearby()
        bubble = None
        if near is not None:
            verb = "attack" if near.event == "attack" else "talk"
            bubble = (f"SPACE: {verb}", near.pos)
        self.hud.draw_map_overlay(self.screen, HINT, self.pilot is not None, bubble, self.line)
        self.hud.draw_panel(self.screen, self.cutscene, self.connection)
        pygame.display.flip()

    @property
    def connection(self) -> str:
        return f"{self.feed.state}  {self.feed.address}"


def log_colour(kind: str) -> tuple[int, int, int]:
    return {"ok": (110, 220, 120), "cut": (250, 150, 60), "dim": (150, 146, 170)}.get(kind, (235, 64, 64))
