"""`shotstream eval --suite vae|probe|text|story --json`: measured figures of the shipped tiny components, and
of whole generated stories, on freshly rendered held-out story-world data, one JSON line.

- vae:   PSNR (dB) of whole held-out shots encoded, decoded chunk by chunk with the causal state, in uint8.
- probe: held-out accuracy per attribute of the evaluation probe, and their minimum (`min_accuracy`).
- text:  held-out accuracy of the text encoder's label heads is not shipped; this suite reports the
         manifest's recorded figures and checks the tokenizer covers every caption word of the held-out set.
- story: held-out stories generated shot by shot by each `--model` row, beside the truth, read by the probe
         (distill/story_eval.py); `--sheet` draws the same stories from every row.
"""
from __future__ import annotations

import argparse
import json
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", choices=["vae", "probe", "text", "story"], required=True,
                        help="vae: held-out PSNR; probe: attribute accuracy; text: held-out captions the vocabulary "
                             "covers; story: generated held-out stories scored through the probe, one row per --model")
    parser.add_argument("--shots", type=int, default=24, help="held-out shots (vae)")
    parser.add_argument("--stories", type=int, default=None,
                        help=f"held-out stories (probe, text: {STORIES['probe']}; story: {STORIES['story']})")
    parser.add_argument("--seed", type=int, default=20_261_121, help="data seed of the held-out set")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    parser.add_argument("--sheet", metavar="PNG", help="vae: also draw the first shots, ground truth above the decoded; "
                                                       "story: the first stories as every row made them")
    parser.add_argument("--model", action="append", metavar="ROW",
                        help="story: a row, repeatable: truth, truth-vae, runtime, runtime-no-context, "
                             "runtime-no-indicator, noise, truth-swapped, teacher:PATH or student:PATH (a student's "
                             "DiT weights run as the runtime runs; default: truth, truth-vae, runtime)")
    parser.add_argument("--against", metavar="ROW", default="runtime",
                        help="story: the row every other row's adherence is compared with, story by story "
                             "(`vs_ROW` in each row: the difference and its 95%% interval; default: runtime, "
                             "when it is a row)")
    parser.add_argument("--stored", action="append", default=[], metavar="EVAL.json:ROW",
                        help="story: a row taken from an earlier --json result on the same stories and seed instead "
                             "of made again (e.g. the shipped model's committed row), compared like the others; "
                             "repeatable")
    parser.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch"],
                        help="story: the runtime row's backend")
    parser.add_argument("--steps", type=int, default=20, help="story: Euler steps of a teacher row")
    parser.add_argument("--guidance", type=float, default=2.0, help="story: guidance scale of a teacher row")


STORIES = {"probe": 120, "text": 120, "story": 24}


def _vae(args) -> dict:
    import numpy as np

    from distill.autoencoder import decode_shot, psnr_db
    from distill.data import shot_pool
    from runtime.model import load_bundle

    bundle = load_bundle("tiny")
    shots = shot_pool(args.seed, "heldout", args.shots)
    decoded = np.stack([decode_shot(bundle.vae, shot) for shot in shots])
    result = {"psnr_db": round(psnr_db(decoded, shots), 2), "shots": args.shots,
              "frames": int(shots.shape[0] * shots.shape[1])}
    if args.sheet:
        _vae_sheet(shots[:SHEET_SHOTS], decoded[:SHEET_SHOTS], args.sheet)
        result["sheet"] = args.sheet
    return result


SHEET_SHOTS, SHEET_TIMES, SHEET_SCALE = 4, (0, 20, 40, 60, 80), 3


def _vae_sheet(truth, decoded, path: str) -> None:
    """One pair of rows per shot: frames SHEET_TIMES as rendered, then as the VAE gives them back."""
    from pathlib import Path

    from PIL import Image, ImageDraw

    from distill.autoencoder import psnr_db

    size, gap, label = truth.shape[2] * SHEET_SCALE, 4, 16
    width = len(SHEET_TIMES) * (size + gap) - gap
    sheet = Image.new("RGB", (width, len(truth) * (2 * size + gap + label + 2 * gap)), (24, 24, 30))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for i, (shot, rec) in enumerate(zip(truth, decoded)):
        draw.text((0, y + 2), f"held-out shot {i + 1}: rendered (top), decoded by the tiny VAE (below), "
                              f"{psnr_db(rec, shot):.1f} dB", fill=(235, 235, 235))
        y += label
        for row in (shot, rec):
            for j, t in enumerate(SHEET_TIMES):
                frame = Image.fromarray(row[t]).resize((size, size), Image.NEAREST)
                sheet.paste(frame, (j * (size + gap), y))
            y += size + gap
        y += gap
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def _probe(args) -> dict:
    from storyworld.probe import evaluate

    result = evaluate(stories=args.stories, seed=args.seed)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}


def _text(args) -> dict:
    from runtime.model import load_bundle
    from runtime.text import shot_prompt
    from storyworld.captions import story_captions
    from storyworld.sampling import sample_story

    bundle = load_bundle("tiny")
    unknown: set[str] = set()
    prompts = 0
    for i in range(args.stories):
        caps = story_captions(sample_story(args.seed, "heldout", i))
        for k in range(len(caps) - 1):
            unknown.update(bundle.tokenizer.unknown_words(shot_prompt(caps["global_caption"], k, caps[f"shot{k + 1}"])))
            prompts += 1
    entry = bundle.manifest["files"]["text_encoder.safetensors"]
    return {"prompts": prompts, "unknown_words": sorted(unknown), "vocabulary": len(bundle.tokenizer.vocab),
            "recorded_heldout_label_accuracy": entry.get("heldout_label_accuracy")}


def _story(args) -> dict:
    from distill.story_eval import DEFAULT_ROWS, stored_rows, story_eval

    rows = args.model or ([] if args.stored else list(DEFAULT_ROWS))  # stored rows alone: paired again
    stored = stored_rows(args.stored, args.stories, args.seed)  # a bad --stored fails before any work
    names = list(stored) + rows
    if args.against != "runtime" and args.against not in names:
        raise SystemExit(f"--against {args.against!r} is not one of the rows: {', '.join(names)}")
    return story_eval(args.stories, args.seed, rows, backend=args.backend, steps=args.steps,
                      guidance=args.guidance, sheet=args.sheet, against=args.against, stored=stored)


def run(args) -> int:
    if args.sheet and args.suite not in ("vae", "story"):
        raise SystemExit(f"--sheet draws the vae and story suites' shots; --suite {args.suite} has none")
    if args.model and args.suite != "story":
        raise SystemExit(f"--model picks the story suite's rows; --suite {args.suite} has none")
    if args.stored and args.suite != "story":
        raise SystemExit(f"--stored takes a row of the story suite; --suite {args.suite} has none")
    if args.against != "runtime" and args.suite != "story":
        raise SystemExit(f"--against compares the story suite's rows; --suite {args.suite} has none")
    if args.stories is None:
        args.stories = STORIES.get(args.suite, 0)
    started = time.perf_counter()
    result = {"suite": args.suite, **{"vae": _vae, "probe": _probe, "text": _text, "story": _story}[args.suite](args)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0
