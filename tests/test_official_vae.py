"""The Wan2.1 VAE on diffusers' AutoencoderKLWan, at reduced width with random weights."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers", reason="the official preset's VAE needs the `official` extra (diffusers)")

from runtime.config import VAEConfig  # noqa: E402
from runtime.vae import FIRST_KEEP  # noqa: E402
from runtime.official.wan_vae import WanVAE, _to_wan, convert_wan_vae_keys, load_wan_vae, wan_vae_keys  # noqa: E402
from runtime.weights import load_strict  # noqa: E402

SMALL = VAEConfig(kind="wan2.1", z_dim=16, base_channels=8)  # the official layout, 12x narrower


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return WanVAE(SMALL).eval()


def test_chunked_decode_equals_diffusers_whole_shot_decode(vae):
    z = torch.randn(9, 16, 4, 6)  # 3 chunks of 3 latents
    with torch.no_grad():
        whole = vae.decode_video(z)
        state = vae.initial_state(4, 6)
        parts = []
        for b in range(3):
            frames, state = vae.decode_chunk(z[3 * b:3 * b + 3], state)
            assert frames.shape == (12, 3, 32, 48)
            parts.append(frames[FIRST_KEEP:] if b == 0 else frames)
    assert [len(p) for p in parts] == [9, 12, 12] and whole.shape == (33, 3, 32, 48)
    assert float(state[0]) == 9
    torch.testing.assert_close(torch.cat(parts), whole, atol=1e-5, rtol=1e-5)


def test_zeroed_state_starts_a_new_shot(vae):
    z = torch.randn(3, 16, 4, 6)
    with torch.no_grad():
        a, state = vae.decode_chunk(z, vae.initial_state(4, 6))
        vae.decode_chunk(torch.randn(3, 16, 4, 6), state)
        b, _ = vae.decode_chunk(z, state.zero_())
    torch.testing.assert_close(a, b)
    assert torch.count_nonzero(a[:FIRST_KEEP]) == 0


def test_single_frame_encode_is_the_normalised_posterior_mean(vae):
    frames = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        z = vae.encode_frames(frames)
        mu = vae.ae.encode(frames[:1].unsqueeze(2)).latent_dist.mean[0, :, 0]
    assert z.shape == (2, 16, 4, 6)
    torch.testing.assert_close(z[0] * vae.latent_std.view(-1, 1, 1) + vae.latent_mean.view(-1, 1, 1), mu,
                               atol=1e-5, rtol=1e-5)


def test_wan_named_state_dict_loads_strictly_through_the_key_map(vae, tmp_path):
    wan = {_to_wan(k): v.clone() for k, v in vae.ae.state_dict().items()}
    # Names as Wan's own vae.py writes them.
    for name in ("conv1.weight", "conv2.bias", "encoder.conv1.weight", "decoder.head.2.weight",
                 "decoder.middle.1.to_qkv.weight", "decoder.upsamples.3.time_conv.weight",
                 "decoder.upsamples.4.shortcut.weight", "encoder.downsamples.0.residual.0.gamma"):
        assert name in wan, name
    assert set(wan_vae_keys(vae.ae)) == set(wan)
    torch.save(wan, tmp_path / "Wan2.1_VAE.pth")
    loaded = load_wan_vae(tmp_path / "Wan2.1_VAE.pth", SMALL)
    for (name, a), (_, b) in zip(vae.ae.state_dict().items(), loaded.ae.state_dict().items()):
        assert torch.equal(a, b), name
    del wan["decoder.head.2.weight"]
    from runtime.errors import WeightsError

    with pytest.raises(WeightsError, match="decoder.conv_out.weight"):
        load_strict(WanVAE(SMALL).ae, convert_wan_vae_keys(wan))
