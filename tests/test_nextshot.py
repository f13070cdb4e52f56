"""The teacher's inputs follow the runtime's own conditioning rules (context plan, flags, captions, RoPE, t)."""
from __future__ import annotations

import numpy as np
import torch

from distill.nextshot import NextShot
from runtime.config import get_preset
from runtime.context import context_plan, flags_for_shot
from runtime.dit import CausalDiT, init_weights

CFG = get_preset("tiny")


def test_shot_zero_has_zero_context_flag_zero_and_reads_its_own_caption():
    ns = NextShot(CFG)
    lay = ns.layout([])
    assert lay.plan == () and lay.context_dropped
    assert lay.flags == (0,) * 6 + (1,) * 21
    assert set(lay.captions) == {0}


def test_later_shots_use_the_runtime_plan_flags_and_caption_routing():
    ns = NextShot(CFG)
    lengths = [81, 81, 57]
    lay = ns.layout(lengths)
    plan = context_plan(lengths, 6)
    flags, new = flags_for_shot(plan, 6)
    assert list(lay.plan) == plan and lay.flags == tuple(flags) + (new,) * 21
    assert lay.captions[:6] == tuple(flags) and lay.captions[6:] == (3,) * 21  # shot k reads caption k
    dropped = ns.layout(lengths, drop_context=True)
    assert dropped.flags == ns.layout([]).flags and dropped.captions[6:] == (3,) * 21


def test_timesteps_are_zero_on_context_and_the_samples_t_on_the_shot():
    ns = NextShot(CFG)
    tf = ns.t_freq(torch.tensor([0.0, 500.0]))
    zero = ns.t_freq(torch.tensor([0.0]))[0, 0]
    assert tf.shape == (2, 27, CFG.dit.freq_dim)
    assert torch.equal(tf[1, :6], zero.expand(6, -1)) and not torch.allclose(tf[1, 6], zero)
    assert torch.equal(tf[1, 6:], tf[1, 6:7].expand(21, -1))


def test_a_batch_with_mixed_flags_equals_each_sample_alone():
    """Per-sample RoPE tables (B, T, pairs) give each sample what it would get alone."""
    torch.manual_seed(0)
    dit = init_weights(CausalDiT(CFG.dit), seed=0).eval()
    ns = NextShot(CFG)
    layouts = [ns.layout([]), ns.layout([81, 81])]
    cos, sin = ns.rope_batch(layouts)
    assert cos.dim() == 3
    x = torch.randn(2, 27, *CFG.latent_shape)
    t = ns.t_freq(torch.tensor([900.0, 300.0]))
    caps = torch.randn(3, CFG.text.text_len, CFG.dit.text_dim)
    text = torch.stack([ns.text(caps, lay) for lay in layouts])
    with torch.no_grad():
        both = dit.forward_full(x, t, text, cos, sin, None)
        for i, lay in enumerate(layouts):
            c, s = ns.rope(lay.flags)
            alone = dit.forward_full(x[i:i + 1], t[i:i + 1], text[i:i + 1], c, s, None)
            np.testing.assert_allclose(both[i].numpy(), alone[0].numpy(), atol=1e-5)
