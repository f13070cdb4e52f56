"""`shotstream eval --suite story`: the held-out story eval, end to end and its scoring, with the real probe,
renderer, VAE, engine (onnxruntime) and a teacher checkpoint of small random weights."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pytest
from PIL import Image

import cli_runner
from distill.story_eval import check_rows, heldout_set, row_maker, score_row, story_intervals
from runtime.model import default_weights_dir
from runtime.weights import sha256_file
from storyworld.probe import WEIGHTS_PATH, Probe, probe_features

pytestmark = pytest.mark.skipif(not WEIGHTS_PATH.exists(), reason="no trained probe weights in storyworld/assets")

SHORT_SEED = 84  # its first held-out stories have 2 shots each: an end-to-end run in seconds


@pytest.fixture(scope="module")
def probe() -> Probe:
    return Probe.load()


def _small_teacher(folder) -> str:
    from runtime.config import get_preset
    from runtime.dit import CausalDiT, init_weights
    from runtime.weights import DIT_PREFIX, save_module

    tiny = get_preset("tiny")
    fields = {"dim": 64, "num_layers": 2, "num_heads": 2, "ffn_dim": 128}
    save_module(init_weights(CausalDiT(replace(tiny.dit, **fields)), 0), folder / "teacher.safetensors", prefix=DIT_PREFIX)
    (folder / "teacher.json").write_text(json.dumps({"preset": "tiny", "dit": fields, "shift": 2.0}))
    return str(folder / "teacher.safetensors")


def test_the_story_suite_runs_every_row_end_to_end_and_draws_its_sheet(tmp_path):
    sheet = tmp_path / "sheet.png"
    rows = ["truth", "truth-vae", "runtime", "noise", f"teacher:{_small_teacher(tmp_path)}"]
    cmd = [sys.executable, "-m", "shotstream.cli", "eval", "--suite", "story", "--stories", "2", "--seed", str(SHORT_SEED),
           "--steps", "2", "--json", "--sheet", str(sheet)] + [a for r in rows for a in ("--model", r)]
    out = cli_runner.run(cmd, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["suite"] == "story" and result["stories"] == 2 and result["shots"] == 4
    assert list(result["rows"]) == rows
    for name, row in result["rows"].items():
        assert row["frames"] == 4 * 81 and row["fps"] > 0, name
        assert set(row["adherence"]) == {"characters", "identity", "place", "framing", "camera", "action", "time",
                                         "mean"}
        assert [p["shot"] for p in row["per_shot"]] == [1, 2] and row["drift"]["shots_6_8"]["shots"] == 0
    truth, noise = result["rows"]["truth"], result["rows"]["noise"]
    assert truth["adherence"]["mean"] >= 0.9 and truth["frechet"] == 0.0
    assert noise["adherence"]["mean"] <= result["chance"]["mean"] and noise["frechet"] > 50
    assert result["rows"]["truth-vae"]["frechet"] < noise["frechet"]
    manifest = json.loads((default_weights_dir("tiny") / "manifest.json").read_text())
    runtime = result["rows"]["runtime"]
    assert runtime["dit_sha256"] == manifest["files"]["dit.safetensors"]["sha256"]  # the weights each row ran
    assert result["rows"][rows[-1]]["dit_sha256"] == sha256_file(rows[-1][len("teacher:"):])
    assert "dit_sha256" not in truth and "dit_sha256" not in noise
    if not manifest["files"]["dit.safetensors"].get("trained", True):  # the sanity row: untrained is chance
        assert runtime["adherence"]["mean"] <= result["chance"]["mean"] + 0.1
    else:  # a trained student draws the places it is asked for, nearer the truth than noise
        assert runtime["adherence"]["place"] > noise["adherence"]["place"] and runtime["frechet"] < noise["frechet"]
    for name, row in result["rows"].items():  # intervals over the stories, and each row against the runtime's
        lo, hi = row["adherence_ci95"]["mean"]
        assert lo <= row["adherence"]["mean"] <= hi and len(row["story_totals"]) == 2, name
        assert ("vs_runtime" in row) == (name != "runtime"), name
    assert result["rows"]["noise"]["vs_runtime"]["place"]["difference"] < 0
    with Image.open(sheet) as image:
        assert image.width > 4 * 128 and image.height > len(rows) * 128 * 2


def test_drift_compares_shot_1_with_shots_6_to_8(probe):
    # Three 8-shot held-out stories; a row that is the truth until shot 5, then noise, drifts; the truth does not.
    data = [s for s in heldout_set(3, 20_261_121) if len(s.truth) == 8]
    assert len(data) == 3
    truth = [s.truth for s in data]
    noise = row_maker("noise", 0)
    late_noise = [s.truth[:5] + noise(s)[5:] for s in data]
    features = probe_features([f for s in truth for f in s], probe)
    steady, drifting = score_row(data, truth, features, probe), score_row(data, late_noise, features, probe)
    assert steady["drift"]["shots_6_8"]["shots"] == 9 and steady["drift"]["shot_1"]["shots"] == 3
    assert steady["drift"]["adherence_ratio"] >= 0.9
    assert drifting["drift"]["adherence_ratio"] < 0.5
    assert drifting["drift"]["shot_1"]["adherence"] == steady["drift"]["shot_1"]["adherence"]
    assert drifting["drift"]["shots_6_8"]["consistency"] < steady["drift"]["shots_6_8"]["consistency"] - 0.5
    assert [p["shots"] for p in steady["per_shot"]] == [3] * 8
    for row in (steady, drifting):  # each shot's label against its reading; the diagonal is the adherence
        for name, table in row["confusion"].items():
            counts = np.asarray(table["counts"])
            assert counts.shape == (len(table["classes"]),) * 2 and counts.sum() == 24, name
            assert np.trace(counts) / 24 == pytest.approx(row["adherence"][name]), name
    labelled = np.asarray(steady["confusion"]["camera"]["counts"]).sum(1)  # the labels are the same in both rows
    assert labelled.tolist() == np.asarray(drifting["confusion"]["camera"]["counts"]).sum(1).tolist()


def test_intervals_pair_the_rows_story_by_story(probe):
    """Each row's interval holds its figure; a row the same as the base differs by exactly 0, noise by an interval
    below 0; the same seed draws the same intervals."""
    data = heldout_set(6, SHORT_SEED)
    truth = [s.truth for s in data]
    noise = [row_maker("noise", 0)(s) for s in data]
    features = probe_features([f for s in truth for f in s], probe)

    def rows() -> dict:
        scored = {"runtime": score_row(data, truth, features, probe), "noise": score_row(data, noise, features, probe)}
        scored["same"] = dict(scored["runtime"])
        story_intervals(scored, seed=3)
        return scored

    first = rows()
    for name, row in first.items():
        for attribute, (lo, hi) in row["adherence_ci95"].items():
            assert lo <= row["adherence"][attribute] <= hi, (name, attribute)
    assert all(v == {"difference": 0.0, "ci95": [0.0, 0.0]} for v in first["same"]["vs_runtime"].values())
    gap = first["noise"]["vs_runtime"]["mean"]
    assert gap["ci95"][0] <= gap["difference"] <= gap["ci95"][1] < 0
    assert first["noise"]["adherence_ci95"]["mean"][1] < first["runtime"]["adherence_ci95"]["mean"][0]
    assert rows()["noise"]["vs_runtime"]["mean"] == gap
    story_intervals(first, seed=3, base="noise")  # `--against noise`: every other row against the noise row
    assert first["runtime"]["vs_noise"]["mean"]["ci95"][0] > 0 and "vs_noise" not in first["noise"]


def test_a_comparison_with_a_row_that_is_not_there_is_refused_before_any_work():
    cmd = [sys.executable, "-m", "shotstream.cli", "eval", "--suite", "story", "--model", "truth", "--against", "noise"]
    out = cli_runner.run(cmd, timeout=120)
    assert out.returncode == 2 and "--against 'noise' is not one of the rows: truth" in out.stderr, out.stderr


def test_a_stored_row_is_compared_as_if_it_had_been_made_again(tmp_path):
    """A row read from an earlier result stands for that row: the comparisons drawn beside it are those of a run
    that makes both rows; a result on other stories is refused before any work."""
    def story_eval(*args: str, code: int = 0) -> CompletedProcess:
        cmd = [sys.executable, "-m", "shotstream.cli", "eval", "--suite", "story", "--seed", str(SHORT_SEED),
               "--json", *args]
        out = cli_runner.run(cmd, timeout=300)
        assert (out.returncode == 0) == (code == 0), out.stderr[-2000:]
        return out

    both = story_eval("--stories", "2", "--model", "truth", "--model", "noise", "--against", "noise").stdout
    (tmp_path / "both.json").write_text(both)
    both = json.loads(both)
    kept = json.loads(story_eval("--stories", "2", "--model", "truth", "--against", "noise",
                                 "--stored", f"{tmp_path / 'both.json'}:noise").stdout)
    assert list(kept["rows"]) == ["noise", "truth"]
    assert kept["rows"]["noise"]["stored_from"] == str(tmp_path / "both.json")
    assert kept["rows"]["noise"]["adherence"] == both["rows"]["noise"]["adherence"]
    assert kept["rows"]["truth"]["vs_noise"] == both["rows"]["truth"]["vs_noise"]
    assert kept["rows"]["truth"]["vs_noise"]["mean"]["ci95"][0] > 0
    refused = story_eval("--stories", "3", "--model", "truth", "--stored", f"{tmp_path / 'both.json'}:noise", code=1)
    assert "on 2 stories of seed 84; this run reads 3 stories" in refused.stderr and "render" not in refused.stderr
    refused = story_eval("--stories", "2", "--stored", f"{tmp_path / 'both.json'}:runtime", code=1)
    assert "has no row 'runtime'" in refused.stderr and "its rows: truth, noise" in refused.stderr

    # A stored runtime row stands for today's runtime only while the DiT it was read on ships: pairing stored rows
    # alone (nothing made) goes through with it, a row read on other weights is refused.
    shipped = json.loads((default_weights_dir("tiny") / "manifest.json").read_text())["files"]["dit.safetensors"]
    for name, digest in (("today", shipped["sha256"]), ("before", "0" * 64)):
        result = json.loads(json.dumps(both))
        result["rows"]["runtime"] = {**result["rows"].pop("noise"), "dit_sha256": digest}
        (tmp_path / f"{name}.json").write_text(json.dumps(result))
    paired = story_eval("--stories", "2", "--stored", f"{tmp_path / 'today.json'}:runtime",
                        "--stored", f"{tmp_path / 'both.json'}:truth")
    assert "render held-out stories" not in paired.stderr  # nothing is made, so no frame is drawn
    paired = json.loads(paired.stdout)
    assert list(paired["rows"]) == ["runtime", "truth"] and paired["shots"] == both["shots"]
    assert paired["rows"]["truth"]["vs_runtime"] == both["rows"]["truth"]["vs_noise"]
    refused = story_eval("--stories", "2", "--stored", f"{tmp_path / 'before.json'}:runtime", code=1)
    assert "read runtime on DiT 00000000; the runtime ships" in refused.stderr


def test_the_rows_render_the_same_stories_and_unknown_rows_are_refused():
    data = heldout_set(1, SHORT_SEED)
    truth = row_maker("truth", 0)(data[0])
    assert all(np.array_equal(a, b) for a, b in zip(truth, data[0].truth))
    swapped = row_maker("truth-swapped", 0)(data[0])
    assert np.array_equal(swapped[0], truth[0]) and not np.array_equal(swapped[1], truth[1])
    with pytest.raises(SystemExit, match="unknown --model"):
        check_rows(["truth", "student"])
    with pytest.raises(SystemExit, match="unknown --model"):
        check_rows(["teacher:"])


def test_the_runtime_ablations_change_what_they_say_and_nothing_else():
    """Zeroed context changes only shots that have context (not a story's first); a zero shot phase changes
    every shot (the indicator marks shot 0's frames too)."""
    story = heldout_set(1, SHORT_SEED)[0]
    full, no_context, no_indicator = (row_maker(r, 0)(story) for r in
                                      ("runtime", "runtime-no-context", "runtime-no-indicator"))
    assert np.array_equal(full[0], no_context[0]) and not np.array_equal(full[1], no_context[1])
    assert not np.array_equal(full[0], no_indicator[0])


def test_the_sheet_labels_two_weights_files_of_one_kind_apart():
    from distill.story_sheet import row_label

    assert row_label("teacher:distill/weights/teacher-tiny-p1.safetensors") == ["teacher", "teacher-tiny-p1"]
    assert row_label("teacher:distill/weights/teacher-tiny.safetensors") == ["teacher", "teacher-tiny"]
    assert row_label("student:runs/ode/student.safetensors") == ["student", "ode/student"]
    assert row_label("truth-vae") == ["truth-vae"]
    long = row_label("student:a/student-with-a-very-long-name.safetensors")[1]
    assert len(long) == 17 and long.startswith("...") and long.endswith("long-name")


MAKE_STUDENT_FOLDERS = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path

    from distill.story_eval import student_weights_dir

    flags, students = Path(sys.argv[1]), sorted(Path(sys.argv[2]).glob("*.safetensors"))
    (flags / sys.argv[3]).touch()
    while not (flags / "go").exists():  # both processes start at once
        time.sleep(0.001)
    for dit in students:
        folder = student_weights_dir(dit)
        assert (folder / "dit.safetensors").read_bytes() == dit.read_bytes(), dit
""")


def test_two_evals_of_one_student_at_once_both_get_its_weights_folder(tmp_path):
    """Two evals reading the same new student at once each make its weights folder (shipped VAE and text encoder,
    the student's DiT) in the shared temp folder: neither may remove or rename the other's half-made copy."""
    students, flags, temp = tmp_path / "students", tmp_path / "flags", tmp_path / "temp"
    for folder in (students, flags, temp):
        folder.mkdir()
    dit = (default_weights_dir("tiny") / "dit.safetensors").read_bytes()
    for i in range(10):  # ten students by digest, each a new folder for both processes
        (students / f"s{i}.safetensors").write_bytes(dit + bytes([i]))
    env = {**os.environ, "TMPDIR": str(temp)}
    procs = [subprocess.Popen([sys.executable, "-c", MAKE_STUDENT_FOLDERS, str(flags), str(students), f"ready{i}"],
                              cwd=Path(__file__).parents[1], env=env, text=True, stderr=subprocess.PIPE)
             for i in range(2)]
    while len(list(flags.iterdir())) < 2 and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    (flags / "go").touch()
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-1000:] for e in errors)
    made = sorted(temp.iterdir())
    assert len(made) == 10 and all(sorted(f.name for f in m.iterdir()) == sorted(
        f.name for f in default_weights_dir("tiny").iterdir()) for m in made)  # no half-made copy left
