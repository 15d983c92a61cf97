"""Progress lines for piped output (issue 11): SB3's rich bar prints nothing until the end when stdout is a file."""

from __future__ import annotations

import io

import gymnasium as gym
from stable_baselines3 import SAC

from sb3_crptpro.app.progress import ProgressLineCallback, training_progress


def test_lines_report_steps_rate_and_end_on_a_real_env() -> None:
    stream = io.StringIO()
    env = gym.make("Pendulum-v1")
    model = SAC("MlpPolicy", env, learning_starts=1000, buffer_size=100, seed=0)
    model.learn(40, callback=ProgressLineCallback(40, label="t", interval_s=0.0, stream=stream))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 40  # one per step (interval 0); not again at the end, where step 40 was just printed
    assert lines[0].startswith("[t] step 1/40 (2%)") and "steps/s" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("[t] step 40/40 (100%)") and "ETA" not in lines[-1]
    env.close()


def test_interval_limits_the_lines() -> None:
    stream = io.StringIO()
    env = gym.make("Pendulum-v1")
    SAC("MlpPolicy", env, learning_starts=1000, buffer_size=100, seed=0).learn(
        30, callback=ProgressLineCallback(30, interval_s=3600.0, stream=stream)
    )
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[-1]]  # only the final line
    assert stream.getvalue().startswith("[train] step 30/30 (100%)")
    env.close()


def test_training_progress_choice() -> None:
    assert training_progress(10, enabled=False) == (False, [])
    bar, callbacks = training_progress(10, enabled=True)  # pytest captures stdout: not a terminal
    assert bar is False and len(callbacks) == 1 and isinstance(callbacks[0], ProgressLineCallback)


def test_piped_bar_prints_plain_lines() -> None:
    from sb3_crptpro.common.progress import progress_bar

    out = io.StringIO()  # not a terminal
    with progress_bar(4, "pretrain", "upd", stream=out, position=2) as bar:
        for _ in range(4):
            bar.update(1)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines()[0].startswith("pretrain:") and "4/4" in text.splitlines()[-1]


def test_piped_pretrain_and_collect_write_no_carriage_returns(tiny_data, tmp_path) -> None:
    """The stages' bars as a user who pipes the command (`... 2>&1 | tee log`) sees them."""
    import subprocess
    import sys

    collect = ["collect", "--tasks", "cartpole_swingup", "reacher_easy", "--transitions", "40", "--image-size",
               "24", "--action-repeat", "50", "--render", "fast", "--workers", "1",
               "--out", str(tmp_path / "data")]  # fmt: skip
    pretrain = ["pretrain", "--data", str(tiny_data), "--out", str(tmp_path / "e.safetensors"), "--updates", "3",
                "--batch-size", "8", "--num-protos", "16"]  # fmt: skip
    for argv in (collect, pretrain):
        proc = subprocess.run([sys.executable, "-m", "sb3_crptpro", *argv], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "\r" not in proc.stderr and "\x1b[" not in proc.stderr, proc.stderr[-500:]
        assert "settotalmass" not in proc.stderr
        assert any(line.startswith(("pretrain:", "cartpole_swingup")) for line in proc.stderr.splitlines())
