"""`shotstream vocab`: the words and marks prompts may use (the loaded model's tokenizer)."""
from __future__ import annotations

import argparse
import json
import textwrap

from runtime.cli_options import add_preset_options

HELP = "print the words and marks prompts may use (the model's vocabulary)"


def add_arguments(v: argparse.ArgumentParser) -> None:
    add_preset_options(v, generates=False)
    v.add_argument("--json", action="store_true", help="one JSON line: preset, text_len, vocabulary")


def run(args) -> int:
    from runtime.model import load_tokenizer

    tokenizer = load_tokenizer(args.preset, args.weights)
    words = tokenizer.words
    if args.json:
        print(json.dumps({"preset": args.preset, "text_len": tokenizer.text_len, "vocabulary": list(words)}))
    else:
        marks = [w for w in words if not w.isalnum()]
        plain = [w for w in words if w.isalnum()]
        print(f"{len(words)} words and marks a prompt of the {args.preset} preset may use "
              f"(at most {tokenizer.text_len} tokens with the caption and 'shotN:'):")
        print("marks: " + " ".join(marks))
        print(textwrap.fill(" ".join(plain), width=100))
    return 0
