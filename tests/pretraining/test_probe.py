"""Linear state probes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sb3_crptpro.common.networks import Encoder
from sb3_crptpro.data import DomainDataset
from sb3_crptpro.pretraining.probe import probe_domain, ridge_r2


def test_ridge_r2_linear_and_noise() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 20, generator=g)
    w = torch.randn(20, 3, generator=g)
    y = x @ w
    assert ridge_r2(x[:200], y[:200], x[200:], y[200:]) > 0.99
    noise = torch.randn(300, 3, generator=g)
    assert ridge_r2(x[:200], noise[:200], x[200:], noise[200:]) < 0.1


def test_probe_domain_on_real_data(tiny_data: Path) -> None:
    data = DomainDataset(tiny_data / "cartpole_swingup")
    assert data.episode_ids().max() == 3  # 4 episodes: 3 to fit, 1 held out
    torch.manual_seed(0)
    r2 = probe_domain(Encoder(data.obs_shape), data)
    assert -10 < r2 <= 1  # a real number on held-out episodes (random features can be below 0)


def test_probe_targets_turn_unbounded_angles_into_sin_cos_and_drop_the_target() -> None:
    from sb3_crptpro.pretraining.probe import probe_targets

    state = np.array([[7.0, -1.0, 0.1, 0.2, 3.0, 4.0]], dtype=np.float32)  # reacher: angles, to_target, velocities
    out = probe_targets(state, "reacher_easy")
    np.testing.assert_allclose(out, [[3.0, 4.0, np.sin(7), np.sin(-1), np.cos(7), np.cos(-1)]], rtol=1e-6)
    assert probe_targets(state, "cheetah_run") is state
    kept = probe_targets(state, "reacher_easy", keep_episode_dims=True)  # many short episodes: the target probed too
    np.testing.assert_allclose(kept, [[0.1, 0.2, 3.0, 4.0, np.sin(7), np.sin(-1), np.cos(7), np.cos(-1)]], rtol=1e-6)


def _drawn_frames(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic 16x16 frames with a 3x3 bright square at a random column (the variable ``x``), plus a noise variable
    that no frame shows: features are the raw pixels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 14, n)
    frames = np.zeros((n, 16, 16), np.float32)
    for i, col in enumerate(x):
        frames[i, 6:9, col : col + 3] = 1.0
    targets = np.stack([x.astype(np.float32), rng.normal(size=n).astype(np.float32)], axis=1)
    return torch.from_numpy(frames.reshape(n, -1)), torch.from_numpy(targets)


def test_per_variable_probes_read_the_drawn_variable_and_not_the_hidden_one() -> None:
    from sb3_crptpro.pretraining.probe import linear_probe, mlp_probe

    x, y = _drawn_frames(600, seed=0)
    split = (x[:450], y[:450], x[450:], y[450:])
    for r2 in (linear_probe(*split), mlp_probe(*split, epochs=60, seed=0)):
        assert r2.shape == (2,) and r2.dtype == np.float64
        assert r2[0] > 0.9  # the square's column is drawn in the frame
        assert r2[1] < 0.1  # the noise variable is not
    np.testing.assert_array_equal(mlp_probe(*split, epochs=5, seed=3), mlp_probe(*split, epochs=5, seed=3))


def test_r2_per_dim_hand_computed() -> None:
    from sb3_crptpro.pretraining.probe import r2_per_dim

    target = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]], dtype=torch.float64)
    pred = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]], dtype=torch.float64)
    r2 = r2_per_dim(pred, target)
    assert r2[0] == 1 - 2 / 8  # SSE 1 + 0 + 1, SST 4 + 0 + 4
    assert np.isnan(r2[1])  # a constant target has no variance to explain


def test_linear_probe_weighted_mean_is_ridge_r2() -> None:
    from sb3_crptpro.pretraining.probe import linear_probe

    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 20, generator=g)
    y = x @ torch.randn(20, 3, generator=g) + 0.5 * torch.randn(300, 3, generator=g)
    per_dim = linear_probe(x[:200], y[:200], x[200:], y[200:])
    assert per_dim.shape == (3,) and np.all(per_dim > 0.8)
    assert 0.8 < ridge_r2(x[:200], y[:200], x[200:], y[200:]) < 1


def test_probe_target_names_follow_probe_targets() -> None:
    from sb3_crptpro.pretraining.probe import probe_target_names

    names = ["a0", "a1", "t0", "t1", "v0", "v1"]
    assert probe_target_names(names, "reacher_easy") == ["v0", "v1", "sin a0", "sin a1", "cos a0", "cos a1"]
    assert probe_target_names(names, "reacher_easy", keep_episode_dims=True)[:4] == ["t0", "t1", "v0", "v1"]
    assert probe_target_names(names, "cheetah_run") == names


def test_ridge_decoder_predicts_what_the_linear_probe_scores() -> None:
    from sb3_crptpro.pretraining.probe import fit_ridge_decoder, linear_probe, r2_per_dim

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 30, generator=g)
    y = x @ torch.randn(30, 2, generator=g) + 3.0 + 0.1 * torch.randn(200, 2, generator=g)
    decoder = fit_ridge_decoder(x[:150], y[:150])
    pred = decoder(x[150:])
    assert pred.dtype == torch.float32 and pred.shape == (50, 2)
    r2 = r2_per_dim(pred.double(), y[150:].double())
    assert np.allclose(r2, linear_probe(x[:150], y[:150], x[150:], y[150:]), atol=1e-6) and r2.min() > 0.95
    assert torch.allclose(pred.mean(0), y[150:].mean(0), atol=0.1)  # in the targets' units, not standardised
