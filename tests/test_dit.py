"""The causal DiT against its own reference: cached chunks (captions projected once, the cache read as its
valid rows) equal the full masked forward, RoPE behaves as the spec says, captions route per frame."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from runtime.config import get_preset
from runtime.context import caption_index
from runtime.dit import CausalDiT, apply_rope, block_mask, init_weights, rope_tables, timestep_frequencies
from runtime.rope import RopeTable

CFG = get_preset("tiny")
D = CFG.dit
TPF = CFG.tokens_per_frame
C = CFG.shot.context_frames


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return init_weights(CausalDiT(D), seed=3).eval()


def tf(values):
    return torch.from_numpy(timestep_frequencies(np.asarray(values, dtype=np.float64)[None], D.freq_dim))


def rope(positions, flags):
    cos, sin = RopeTable(CFG, 27).tables(list(positions), list(flags))
    return torch.from_numpy(cos), torch.from_numpy(sin)


def run_cached(model, ctx, ctx_flags, chunks, flag, text, t_last):
    """Fill the global cache, write clean chunks 0..n-2, then the noisy last chunk, the way the runtime does:
    each caption projected once (`cross_kv`), each chunk reading exactly the rows valid before it.
    Returns the last chunk's velocity and the joint cache."""
    n_cap = text.shape[1]
    with torch.no_grad():
        ck, cv = model.cross_kv(text[0])  # (n_cap, layers, L, dim): one entry per caption
        index = torch.tensor([caption_index(f, n_cap) for f in ctx_flags])
        gk, gv = model.context_fill(ctx, tf([0] * C), ck, cv, index, *rope(range(C), ctx_flags))
        kk, vv = [gk], [gv]
        own = caption_index(flag, n_cap)
        for b, x in enumerate(chunks):
            t = [t_last] * 3 if b == len(chunks) - 1 else [0.0] * 3
            vel, kn, vn = model.chunk_step(x, tf(t), ck[own], cv[own], *rope(range(C + 3 * b, C + 3 * b + 3), [flag] * 3),
                                           torch.cat(kk), torch.cat(vv))
            kk.append(kn)
            vv.append(vn)
    return vel, (torch.cat(kk), torch.cat(vv))


@pytest.mark.parametrize("n_chunks", [1, 2, 4])
def test_cached_chunk_equals_full_masked_forward(model, n_chunks):
    g = torch.Generator().manual_seed(n_chunks)
    ctx = torch.randn(1, C, *CFG.latent_shape, generator=g)
    chunks = [torch.randn(1, 3, *CFG.latent_shape, generator=g) for _ in range(n_chunks)]
    text = torch.randn(1, 3, CFG.text.text_len, D.text_dim, generator=g)
    ctx_flags, flag, t = [0, 0, 0, 1, 1, 1], 2, 888.8889
    vel, _ = run_cached(model, ctx, ctx_flags, chunks, flag, text, t)
    frames = C + 3 * n_chunks
    flags = ctx_flags + [flag] * 3 * n_chunks
    tt = [0.0] * (frames - 3) + [t] * 3
    with torch.no_grad():
        full = model.forward_full(torch.cat([ctx] + chunks, 1), tf(tt), text[:, [caption_index(f, 3) for f in flags]],
                                  *rope(range(frames), flags), block_mask(C, 3 * n_chunks, 3, TPF))
    assert vel.abs().mean() > 0.1  # a real output, not a degenerate zero head
    torch.testing.assert_close(vel, full[:, -3:], atol=1e-4, rtol=1e-4)


def test_block_mask_structure():
    m = block_mask(2, 6, 3, 1)[0, 0]
    assert m[:2, :2].all() and not m[:2, 2:].any()  # context sees only context
    assert m[2:5, :5].all() and not m[2:5, 5:].any()  # block 0: context + itself
    assert m[5:, :].all()  # block 1: everything before it and itself


def test_a_table_of_captions_equals_captions_per_frame(model):
    """Frames that pick their caption from a table get what frames given the caption itself get."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 4, *CFG.latent_shape, generator=g)
    table = torch.randn(3, CFG.text.text_len, D.text_dim, generator=g)
    index = torch.tensor([[0, 0, 2, 1], [1, 2, 2, 0]])
    args = (x, tf([500.0] * 4).expand(2, -1, -1), table[index], *rope(range(4), [0, 0, 1, 1]), None)
    with torch.no_grad():
        per_frame = model.forward_full(*args)
        indexed = model.forward_full(*args[:2], table, *args[3:], text_index=index)
    assert per_frame[0].abs().mean() > 0.1
    torch.testing.assert_close(indexed, per_frame, atol=1e-5, rtol=1e-5)


def test_a_block_after_its_prefix_keys_equals_its_rows_of_the_full_masked_forward(model):
    """prefix_kv once, then forward_after for the block (as a training rollout's steps read it): the block's rows
    of forward_full under the block mask, for a batch of two with captions per frame from a table."""
    g = torch.Generator().manual_seed(12)
    frames, p = C + 6, C + 3  # context, one earlier block, then the block itself
    x = torch.randn(2, frames, *CFG.latent_shape, generator=g)
    table = torch.randn(3, CFG.text.text_len, D.text_dim, generator=g)
    index = torch.tensor([[0] * p + [1] * 3, [2] * p + [1] * 3])
    t = tf([0.0] * p + [700.0] * 3).expand(2, -1, -1)
    cos, sin = rope(range(frames), [0] * C + [1] * 6)
    mask = block_mask(C, 6, 3, TPF)
    rows = p * TPF
    with torch.no_grad():
        full = model.forward_full(x, t, table, cos, sin, mask, text_index=index)
        past = model.prefix_kv(x[:, :p], t[:, :p], table, cos[:rows], sin[:rows], mask[..., :rows, :rows], index[:, :p])
        after = model.forward_after(x[:, p:], t[:, p:], table, cos[rows:], sin[rows:], index[:, p:], past)
    assert after.abs().mean() > 0.1
    torch.testing.assert_close(after, full[:, p:], atol=1e-5, rtol=1e-5)


def test_a_prefix_grown_a_block_at_a_time_has_the_keys_of_the_whole_prefix(model):
    """extend_kv (a rollout's clean chunk appended to the keys it read) equals prefix_kv of the longer prefix
    under the block mask, in every layer: context, then two blocks of three frames, batch of two."""
    g = torch.Generator().manual_seed(13)
    frames = C + 6
    x = torch.randn(2, frames, *CFG.latent_shape, generator=g)
    table = torch.randn(3, CFG.text.text_len, D.text_dim, generator=g)
    index = torch.tensor([[0] * C + [1] * 6, [2] * C + [1] * 6])
    t = tf([0.0] * frames).expand(2, -1, -1)
    cos, sin = rope(range(frames), [0] * C + [1] * 6)
    mask = block_mask(C, 6, 3, TPF)
    with torch.no_grad():
        whole = model.prefix_kv(x, t, table, cos, sin, mask, index)
        grown = model.prefix_kv(x[:, :C], t[:, :C], table, cos[:C * TPF], sin[:C * TPF],
                                mask[..., :C * TPF, :C * TPF], index[:, :C])
        for start in (C, C + 3):
            rows = slice(start * TPF, (start + 3) * TPF)
            grown = model.extend_kv(x[:, start:start + 3], t[:, start:start + 3], table, cos[rows], sin[rows],
                                    index[:, start:start + 3], grown)
    for a, b in zip([*whole[0], *whole[1]], [*grown[0], *grown[1]]):
        assert a.shape == b.shape == (2, frames * TPF, D.num_heads, D.head_dim)
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_rope_scores_invariant_to_shifting_all_positions_or_all_flags():
    q = torch.randn(1, 2 * TPF, 1, D.head_dim)
    k = torch.randn(1, 2 * TPF, 1, D.head_dim)

    def scores(pq, sq, pk, sk):
        qc, qs = rope(pq, sq)
        kc, ks = rope(pk, sk)
        return apply_rope(q, rope_tables(qc, qs))[0, :, 0] @ apply_rope(k, rope_tables(kc, ks))[0, :, 0].T

    base = scores([3, 4], [1, 1], [0, 1], [0, 0])
    torch.testing.assert_close(scores([8, 9], [1, 1], [5, 6], [0, 0]), base, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(scores([3, 4], [4, 4], [0, 1], [3, 3]), base, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(scores([3, 4], [2, 2], [0, 1], [0, 0]), base, atol=1e-3)  # the flag matters


def test_shot_flag_is_a_constant_phase_on_temporal_pairs_only():
    table = RopeTable(CFG, 27)
    nt = D.rope_pairs[0]
    a = table.angles([4], [0], np.zeros((TPF, table.pairs)))
    b = table.angles([4], [3], np.zeros((TPF, table.pairs)))
    np.testing.assert_allclose(b[:, :nt] - a[:, :nt], 3 * CFG.shot.shot_phase)
    np.testing.assert_array_equal(b[:, nt:], a[:, nt:])
    assert D.rope_pairs == (12, 10, 10) and get_preset("shotstream-1.3b").dit.rope_pairs == (22, 21, 21)


def test_rope_rotation_is_interleaved_pairs():
    x = torch.zeros(1, 1, 1, 4)
    x[..., 0] = 1.0  # pair 0 = (1, 0)
    cos, sin = torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])  # pair 0 rotated by 90 degrees
    out = apply_rope(x, rope_tables(cos, sin))[0, 0, 0]
    torch.testing.assert_close(out, torch.tensor([0.0, 1.0, 0.0, 0.0]))


def test_caption_routing_rule_covers_single_and_multi_caption():
    assert [caption_index(f, 1) for f in (0, 1, 5)] == [0, 0, 0]  # one caption: everyone reads it
    assert [caption_index(f, 3) for f in (0, 1, 2, 3)] == [0, 1, 2, 2]


def test_cross_attention_reads_only_its_frames_caption(model):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, *CFG.latent_shape, generator=g)
    text = torch.randn(1, 2, CFG.text.text_len, D.text_dim, generator=g)
    changed = text.clone()
    changed[:, 1] = torch.randn(CFG.text.text_len, D.text_dim, generator=g)
    cos, sin = rope([0, 1], [0, 0])
    mask = block_mask(0, 2, 1, TPF)  # frame 0 cannot see frame 1
    with torch.no_grad():
        a = model.forward_full(x, tf([500.0, 500.0]), text, cos, sin, mask)
        b = model.forward_full(x, tf([500.0, 500.0]), changed, cos, sin, mask)
    torch.testing.assert_close(a[:, 0], b[:, 0])  # frame 0's output ignores frame 1's caption
    assert not torch.allclose(a[:, 1], b[:, 1])
