"""The shot generator over real backends: cache invariants, call counts, buffers that never move,
determinism by seed, stop/cut at chunk boundaries, nothing lost when a consumer walks away."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import CAPTION, collect
from runtime.errors import InvalidPromptError, InvalidRequestError, SessionClosedError, UnknownWordsError


def test_shot_geometry_and_frames(ort_engine):
    story = ort_engine.open_story(seed=0, global_caption=CAPTION)
    chunks = list(story.generate_shot("the knight walks in the cave"))
    assert [len(c.frames) for c in chunks] == [9, 12, 12, 12, 12, 12, 12]
    assert [c.first_frame for c in chunks] == [0, 9, 21, 33, 45, 57, 69]
    assert [c.is_last for c in chunks] == [False] * 6 + [True]
    f = chunks[-1].frames
    assert f.dtype == np.uint8 and f.shape[1:] == (64, 64, 3) and not f.flags.writeable
    assert story.shots_done == 1 and story.history[0].length == 81


def test_35_model_calls_for_a_seven_chunk_shot(ort_engine):
    """The official loop makes 36 DiT calls: a context fill, then 4 steps and a clean pass per chunk. The last
    chunk's clean pass, whose K/V nothing reads, is not run here: 1 + 7 * 4 + 6."""
    story = ort_engine.open_story(seed=0, global_caption=CAPTION)
    before = dict(ort_engine.backend.calls)
    collect(story.generate_shot("the dragon flies above the castle"))
    calls = {k: v - before.get(k, 0) for k, v in ort_engine.backend.calls.items()}
    assert (calls["context_fill"], calls["dit_chunk"]) == (1, 34)
    assert calls["cross_kv"] == 2 and calls["vae_decode_chunk"] == 7  # the shot's caption and the context's


def test_buffers_keep_their_addresses_across_chunks_and_shots(ort_engine):
    story = ort_engine.open_story(seed=0, global_caption=CAPTION)
    addresses = story.buffer_addresses()
    cache_ptrs = story.cache.data_ptrs()
    for prompt in ("the knight walks in the forest", "the dragon casts a spell", "the knight jumps"):
        for _ in story.generate_shot(prompt, chunks=3):
            assert story.buffer_addresses() == addresses
            assert story.cache.data_ptrs() == cache_ptrs


def test_same_seed_same_frames_other_seed_other_frames(ort_engine):
    def run(seed):
        story = ort_engine.open_story(seed=seed, global_caption=CAPTION)
        return np.concatenate([collect(story.generate_shot(p, chunks=2))
                               for p in ("the knight walks in the cave", "the dragon flies")])

    a, b, c = run(5), run(5), run(6)
    assert a.shape == (2 * 21, 64, 64, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("engine_name", ["torch_engine", "ort_engine"])
def test_global_cache_untouched_by_chunks_and_local_slot_holds_clean_pass(engine_name, request):
    """Spec invariants 2 and 3, checked on the live story after each chunk. When chunk b starts, chunk b-1's
    clean pass writes its K/V into its slot itself (the graph's outputs are bound there; nothing copies them)
    and commits it: the slot then holds what `chunk_step` on chunk b-1's x0 at t=0 gives."""
    eng = request.getfixturevalue(engine_name)
    story = eng.open_story(seed=3, global_caption=CAPTION)
    collect(story.generate_shot("the knight walks in the forest", chunks=2))  # history for a real context
    it = story.generate_shot("the dragon casts a spell", chunks=3)
    tpf, dit = eng.cfg.tokens_per_frame, eng.bundle.dit
    n_global = story.cache.global_.spec.capacity_tokens
    global_before, previous = None, None
    for b, _ in enumerate(it):
        gk, gv = story.cache.global_.k.copy(), story.cache.global_.v.copy()
        if global_before is None:
            global_before = (gk, gv)
        assert np.array_equal(gk, global_before[0]) and np.array_equal(gv, global_before[1])
        local = story.cache.local
        assert local.valid[0] == 3 * b * tpf  # every chunk before this one, cleaned
        if previous is not None:
            x0, rope = previous
            past = n_global + 3 * (b - 1) * tpf  # the rows chunk b-1 reads
            cross = story.buffers["dit_chunk"]
            with torch.no_grad():
                _, k_clean, v_clean = dit.chunk_step(
                    torch.from_numpy(x0), torch.from_numpy(eng.t_freq_zero(3)), torch.from_numpy(cross["cross_k"]),
                    torch.from_numpy(cross["cross_v"]), *map(torch.from_numpy, rope),
                    torch.from_numpy(story.cache.k[:past]), torch.from_numpy(story.cache.v[:past]))
            slot = slice(3 * (b - 1) * tpf, 3 * b * tpf)
            torch.testing.assert_close(torch.from_numpy(local.k[slot]), k_clean, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(torch.from_numpy(local.v[slot]), v_clean, atol=1e-4, rtol=1e-4)
        bufs = story.buffers["dit_chunk"]
        previous = story._x0.copy(), (bufs["rope_cos"].copy(), bufs["rope_sin"].copy())
        assert not local.k[3 * (b + 1) * tpf:].any()  # later slots untouched


def test_stop_ends_the_shot_at_the_next_chunk_boundary(ort_engine):
    story = ort_engine.open_story(seed=1, global_caption=CAPTION)
    stop = threading.Event()
    got = []
    for chunk in story.generate_shot("the knight walks in the cave", chunks=7, stop=stop):
        got.append(chunk)
        if chunk.chunk_index == 1:
            stop.set()
    assert [c.chunk_index for c in got] == [0, 1]
    assert story.history[0].chunks == 2 and story.history[0].length == 21
    nxt = list(story.generate_shot("the dragon flies", chunks=1))  # the story goes on
    assert nxt[0].shot_index == 1 and nxt[0].story_frame == 21


def test_replay_with_a_cut_is_identical(ort_engine):
    def run():
        story = ort_engine.open_story(seed=9, global_caption=CAPTION)
        stop = threading.Event()
        frames = []
        for c in story.generate_shot("the knight walks in the forest", stop=stop):
            frames.append(c.frames.copy())
            if c.chunk_index == 2:
                stop.set()
        frames.append(collect(story.generate_shot("the dragon attacks the knight", chunks=2)))
        return np.concatenate(frames)

    assert np.array_equal(run(), run())


def test_a_consumer_that_walks_away_loses_nothing(ort_engine):
    story = ort_engine.open_story(seed=2, global_caption=CAPTION)
    it = story.generate_shot("the knight walks in the cave")
    next(it), next(it)
    it.close()
    assert story.shots_done == 1 and story.history[0].length == 21
    assert list(story.generate_shot("the dragon flies", chunks=1))[0].shot_index == 1


def test_bad_requests_are_refused_before_any_work(ort_engine):
    story = ort_engine.open_story(seed=0, global_caption=CAPTION)
    for chunks in (0, 8, 2.5, True):
        with pytest.raises(InvalidRequestError):
            story.generate_shot("the knight walks", chunks=chunks)
    with pytest.raises(InvalidPromptError):
        story.generate_shot("   ")
    with pytest.raises(UnknownWordsError) as err:
        story.generate_shot("the knight zorbles a zeppelinx and a hovercraftx")
    assert err.value.words == ["zorbles", "zeppelinx", "hovercraftx"]
    with pytest.raises(InvalidPromptError, match="tokens"):
        story.generate_shot(" ".join(["knight"] * 90))
    with pytest.raises(InvalidRequestError):
        ort_engine.open_story(seed=-1, global_caption=CAPTION)
    assert story.shots_done == 0
    story.close()
    with pytest.raises(SessionClosedError):
        story.generate_shot("the knight walks")


def test_concurrent_stories_get_the_frames_they_would_get_alone(ort_engine):
    prompts = ("the knight walks in the forest", "the dragon flies above the castle")

    def run(seed, out):
        story = ort_engine.open_story(seed=seed, global_caption=CAPTION)
        out[seed] = np.concatenate([collect(story.generate_shot(p, chunks=2)) for p in prompts])

    alone: dict = {}
    for seed in (1, 2, 3):
        run(seed, alone)
    together: dict = {}
    threads = [threading.Thread(target=run, args=(seed, together)) for seed in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for seed in (1, 2, 3):
        assert np.array_equal(alone[seed], together[seed])


def test_preparing_the_next_shot_while_idle_changes_no_frame_and_takes_the_fill_off_its_first_chunk(ort_engine):
    prompts = ("the knight walks in the forest", "the dragon flies above the castle", "the knight jumps")
    plain = ort_engine.open_story(seed=5, global_caption=CAPTION)
    prepared = ort_engine.open_story(seed=5, global_caption=CAPTION)
    assert not prepared.prepare_next()  # no shot yet: the first context reads the first prompt's caption
    for prompt in prompts:
        want = collect(plain.generate_shot(prompt, chunks=2))
        before = ort_engine.backend.calls.get("context_fill", 0)
        first, *rest = prepared.generate_shot(prompt, chunks=2)
        fills = ort_engine.backend.calls.get("context_fill", 0) - before
        got = np.concatenate([first.frames.copy()] + [c.frames.copy() for c in rest])
        assert np.array_equal(got, want)
        assert fills == (1 if prompt is prompts[0] else 0) and first.setup_seconds > 0
        assert prepared.prepare_next() and not prepared.prepare_next()  # once per shot
