"""Strict loading: the official checkpoint format, every mismatch listed, the manifest checked."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from runtime.config import get_preset
from runtime.dit import CausalDiT, init_weights
from runtime.errors import WeightsError
from runtime.model import build_dit, default_weights_dir, load_bundle
from runtime.weights import DIT_PREFIX, load_strict, read_state_dict

TINY = get_preset("tiny")


def official_checkpoint(path, model):
    sd = {DIT_PREFIX + k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"generator": sd}, path)
    return sd


def test_official_pt_format_loads_strictly_key_by_key(tmp_path):
    src = init_weights(CausalDiT(TINY.dit), seed=1)
    official_checkpoint(tmp_path / "shotstream_merged.pt", src)
    dst = CausalDiT(TINY.dit)
    load_strict(dst, read_state_dict(tmp_path / "shotstream_merged.pt"), prefix=DIT_PREFIX)
    for (name, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert torch.equal(a, b), name


def test_mismatches_are_all_listed(tmp_path):
    sd = official_checkpoint(tmp_path / "x.pt", CausalDiT(TINY.dit))
    del sd["model.blocks.0.self_attn.q.weight"]
    sd["model.blocks.0.extra"] = torch.zeros(1)
    sd["model.head.head.bias"] = torch.zeros(3)
    with pytest.raises(WeightsError) as err:
        load_strict(CausalDiT(TINY.dit), sd, source="x.pt", prefix=DIT_PREFIX)
    e = err.value
    assert e.missing == ["model.blocks.0.self_attn.q.weight"]
    assert e.unexpected == ["model.blocks.0.extra"]
    assert len(e.mismatched) == 1 and e.mismatched[0].startswith("model.head.head.bias [3]")
    assert "missing keys" in str(e) and "mis-shaped" in str(e)


def test_official_preset_names_and_shapes_match_the_reference_list():
    ref = [line.split("\t")[:2] for line in open("tests/data/shotstream-1.3b-state-dict.tsv").read().splitlines()]
    dit = build_dit(get_preset("shotstream-1.3b"), "meta")
    ours = [[DIT_PREFIX + k, str(list(v.shape))] for k, v in dit.state_dict().items()]
    assert len(ref) == 825 and ours == ref
    assert sum(p.numel() for p in dit.parameters()) == 1_418_996_800


def test_embedded_default_is_checked_against_its_manifest(tmp_path):
    copy = tmp_path / "tiny"
    shutil.copytree(default_weights_dir("tiny"), copy)
    assert load_bundle("tiny", copy).cfg.name == "tiny"
    manifest = json.loads((copy / "manifest.json").read_text())
    assert all(len(e["sha256"]) == 64 and "recipe" in e for e in manifest["files"].values())
    with open(copy / "vae.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(WeightsError, match="sha256"):
        load_bundle("tiny", copy)


def test_official_preset_says_what_is_missing():
    pytest.importorskip("diffusers", reason="the official preset needs the `official` extra")
    with pytest.raises(WeightsError, match="no --weights folder given") as err:
        load_bundle("shotstream-1.3b")
    assert "Wan2.1_VAE.pth: missing" in str(err.value) and "google/umt5-xxl: missing" in str(err.value)
