"""`shotstream render`, `vocab`, `model-info` and every subcommand's help as a user runs them (a process of its own,
forked from a warm interpreter: tests/cli_runner.py)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

import cli_runner

REPO = Path(__file__).resolve().parent.parent

STORY = {"global_caption": "a knight and a dragon, pixel art",
         "shot1": "the knight walks in the forest", "shot2": "the dragon flies above the castle"}


def shotstream(*args, check=True, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return cli_runner.run([sys.executable, "-m", "shotstream.cli", *args], check=check, timeout=300, cwd=cwd or REPO,
                          env=env)


def render(tmp_path, seed, *extra):
    story = tmp_path / "story.json"
    story.write_text(json.dumps(STORY))
    out = shotstream("render", str(story), "--seed", str(seed), "--json", *extra)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_shot_story_is_162_frames_and_reproducible_by_seed(tmp_path):
    a = render(tmp_path, 1, "--out", str(tmp_path / "a.mp4"))
    b = render(tmp_path, 1, "--no-out")
    c = render(tmp_path, 2, "--no-out")
    assert b["out"] is None and a["frames"] == 162 and a["shots"] == 2 and (a["width"], a["height"], a["fps"]) == (64, 64, 16)
    assert a["frames_sha256"] == b["frames_sha256"] != c["frames_sha256"]
    assert (tmp_path / "a.mp4").stat().st_size > 1000
    assert a["generate_seconds"] > 0 and a["first_frame_seconds"] <= a["generate_seconds"]


def test_model_info_lists_the_official_tensors():
    out = shotstream("model-info", "--preset", "shotstream-1.3b", "--state-dict").stdout
    ref = ["\t".join(line.split("\t")[:2]) for line in open("tests/data/shotstream-1.3b-state-dict.tsv").read().splitlines()]
    assert out.splitlines() == ref


def test_bad_story_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"shot1": "x"}')
    r = shotstream("render", str(bad), check=False)
    assert r.returncode == 2 and "global_caption" in r.stderr
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"global_caption": "a knight", "shot1": "the knight rides a zeppelin"}))
    r = shotstream("render", str(unknown), check=False)
    assert r.returncode == 2 and "zeppelin" in r.stderr and "Traceback" not in r.stderr


def test_render_without_out_writes_a_default_path_it_prints(tmp_path):
    r = shotstream("render", "--prompt", "the knight walks", "--chunks", "1", "--seed", "3", "--quiet", cwd=tmp_path)
    out = next(line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith("out: "))
    assert out == "out/prompts-seed3.mp4" and (tmp_path / out).stat().st_size > 1000


def test_prompts_are_refused_before_any_progress_bar_and_lenient_lists_what_it_left_out(tmp_path):
    r = shotstream("render", "--prompt", "the knight walks", "--prompt", "the zorblax flies", "--chunks", "1",
                   "--no-out", check=False, cwd=tmp_path)
    assert r.returncode == 2 and "zorblax" in r.stderr and "%|" not in r.stderr  # no tqdm bar was drawn
    r = shotstream("render", "--prompt", "the knight zorblaxes", "--chunks", "1", "--no-out", "--json",
                   "--prompt-mode", "lenient", cwd=tmp_path)
    assert json.loads(r.stdout)["dropped_words"] == [["zorblaxes"]]


def test_vocab_lists_what_the_shipped_tokenizer_knows(ort_engine):
    listed = json.loads(shotstream("vocab", "--json").stdout)
    assert tuple(listed["vocabulary"]) == ort_engine.info.vocabulary and listed["text_len"] == 80
    text = shotstream("vocab").stdout
    assert "knight" in text and "marks: , . :" in text


@pytest.mark.parametrize("command", ["render", "vocab", "model-info", "bench", "serve", "demo", "eval"])
def test_every_option_of_every_subcommand_has_help(command):
    lines = shotstream(command, "--help").stdout.splitlines()
    options = [i for i, line in enumerate(lines) if line.lstrip().startswith("-")]
    assert options
    for i in options:  # help follows an option after two spaces, or on the next, deeper indented line
        follows = i + 1 < len(lines) and lines[i + 1].startswith(" " * 20) and not lines[i + 1].lstrip().startswith("-")
        assert "  " in lines[i].strip() or follows, f"no help text: {lines[i].strip()}"


def test_bench_reports_time_to_first_frame_in_process_and_through_grpc():
    out = shotstream("bench", "--shots", "2", "--chunks", "2", "--json", "--no-reference").stdout
    result = json.loads(out.strip().splitlines()[-1])
    [row] = result["rows"]
    assert row["backend"] == "onnxruntime" and result["machine"]["cores"] >= 1
    assert result["machine"]["isa"] == torch.backends.cpu.get_cpu_capability()  # AVX2 or AVX512: 2x in peak
    for key in ("first_frame_ms_p50", "first_chunk_gen_ms_p50", "grpc_first_frame_ms_p50",
                "grpc_first_chunk_gen_ms_p50", "grpc_first_frame_over_first_chunk"):
        assert row[key] > 0, key
    # the idle session prepared the shot's context: what the first frame waits for is its first chunk
    assert row["grpc_setup_ms_p50"] < row["grpc_first_chunk_gen_ms_p50"] / 2
    assert row["grpc_first_frame_ms_p50"] >= row["grpc_first_chunk_gen_ms_p50"]
    assert row["grpc_first_frame_ms_p99"] >= row["grpc_first_frame_ms_p50"]


def test_bench_compares_backends_and_the_reference_loop_in_one_run():
    from runtime.config import get_preset
    from runtime.measure.flops import dit_loop_flops

    out = shotstream("bench", "--backend", "onnxruntime", "--backend", "torch", "--shots", "2", "--chunks", "2",
                     "--no-grpc", "--json")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rows = {r["backend"]: r for r in result["rows"]}
    assert list(rows) == ["onnxruntime", "torch", "reference_loop"]
    for name, r in rows.items():  # the work of a shot: the runtime's, or the official schedule's
        gflop = dit_loop_flops(get_preset("tiny"), 2, official=name == "reference_loop") / 1e9
        assert r["dit_loop_gflop_per_shot"] == pytest.approx(gflop, abs=1e-3), name
        assert r["achieved_gflops"] == pytest.approx(gflop / r["dit_loop_seconds_per_shot"], rel=0.01), name
        assert 0 < r["of_matmul_peak"] == pytest.approx(r["achieved_gflops"] / r["matmul_peak_gflops"], abs=2e-3)
    for name in ("onnxruntime", "torch"):
        r = rows[name]
        assert r["buffers_never_reallocated"] and r["python_heap_peak_bytes_per_steady_chunk"] < 64 * 1024
        speedup = result["dit_loop_speedup_over_reference"][name]
        ref = rows["reference_loop"]["dit_loop_seconds_per_shot"]
        assert speedup == pytest.approx(ref / r["dit_loop_seconds_per_shot"], rel=0.02)
    fastest = min(rows, key=lambda n: rows[n]["dit_loop_seconds_per_shot"])
    assert result["fastest_dit_loop"] == fastest
    assert set(result["dit_loop_speedup_of_fastest"]) == set(rows) - {fastest}
    assert all(v >= 1 for v in result["dit_loop_speedup_of_fastest"].values())


def refused(result, *words):
    """A refusal as the exit-status convention says: status 2, one line on stderr naming `words`, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("shotstream ")]
    assert len(lines) == 1 and all(w in lines[0] for w in words), result.stderr
    assert "Traceback" not in result.stderr


def test_bench_refuses_a_backend_twice():
    refused(shotstream("bench", "--backend", "torch", "--backend", "torch", "--json", check=False),
            "each --backend once")


def test_an_unwritable_output_is_refused_in_one_line_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in ("/proc/x.mp4", str(blocker / "x.mp4"), str(blocker / "pngs")):
        r = shotstream("render", "--prompt", "the knight walks", "--chunks", "1", "--out", out, check=False)
        refused(r, out, "cannot write")
        assert "%|" not in r.stderr  # refused before the progress bar: no work was done


def test_a_story_file_with_prompts_or_a_shot_that_is_not_text_is_refused(tmp_path):
    story = tmp_path / "story.json"
    story.write_text(json.dumps(STORY))
    refused(shotstream("render", str(story), "--prompt", "the dragon flies", "--no-out", check=False), "not both")
    refused(shotstream("render", str(story), "--global-caption", "a cat", "--no-out", check=False), "not both")
    story.write_text(json.dumps({"global_caption": "a knight", "shot1": 5}))
    refused(shotstream("render", str(story), "--no-out", check=False), "'shot1' must be a string", "5")
    refused(shotstream("render", "--prompt", "the knight walks", "--chunks", "9", "--no-out", check=False), "1..7")
    refused(shotstream("render", "--no-out", check=False), "at least one --prompt")


def test_every_refusal_exits_2_and_help_says_so():
    refused(shotstream("render", "--chunks", "x", check=False), "invalid int")  # argparse's own
    refused(shotstream("eval", "--suite", "text", "--sheet", "s.png", check=False), "--sheet")  # a plugin's
    for command in ("render", "bench", "vocab", "serve", "demo"):
        assert "exit status: 0 done; 2 refused" in " ".join(shotstream(command, "--help").stdout.split())


def test_writer_wording_reads_as_the_vocabulary_and_the_reading_is_reported(tmp_path):
    r = shotstream("render", "--prompt", "the knight and the wizard walk into the village", "--prompt",
                   "the knight draws his sword", "--chunks", "1", "--no-out", "--json", cwd=tmp_path)
    assert json.loads(r.stdout)["read_as"] == [[["walk", "walks"]], [["draws", "swings"]]]