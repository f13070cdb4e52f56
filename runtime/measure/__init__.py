"""Measuring tools, apart from the serving path: `bench` (speed and memory of one run, per backend), `flops` (the
work of a shot on the runtime's and the official schedule, and matrix-multiply peaks) and `reference_loop` (the
official-style loop on the engine's weights, the bench's peer). Nothing in the runtime imports them."""
