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
