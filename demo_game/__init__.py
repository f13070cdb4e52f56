"""The ShotStream demo game (pygame): a knight walks a small kingdom, and every place he enters and
everyone he meets becomes a cutscene generated live by the model, streamed over gRPC.

It is a client like any game engine: it talks to the server only through `engine_bridge.client`, and
imports no runtime internals (the in-process server of `shotstream demo` is started in `cli` through
the bridge's server entry point). Run it with `shotstream demo` or `python -m demo_game`.

Modules: `cli` (options, server, window or headless recording), `game` (the Game object and its main
loop; the controls are listed there), `world` and `art` (map, characters, pixel art), `feed` (the
session and its background threads), `cutscene` (playout buffer), `hud` (layout and overlays),
`pilot` (autoplay), `record` (video file).
"""
