"""The project's front door: the `shotstream` command (`cli`, a thin dispatcher) and its commands that live
nowhere else (render, vocab, model-info, bench). It sits above every other package and nothing imports it."""
