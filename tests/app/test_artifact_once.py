"""Data flows once (issue 16): one `train` or `evaluate` run reads and verifies the artifact file once and hands the
loaded object to the env encoder, the intrinsic reward, the extractor and (pickled) the --overlap workers."""

from __future__ import annotations

from pathlib import Path

import pytest

import sb3_crptpro.common.artifact as artifact_module
from sb3_crptpro.app.cli import main

TINY = ["--steps", "30", "--batch-size", "8", "--learning-starts", "10", "--eval-freq", "15", "--eval-episodes", "1",
        "--action-repeat", "50", "--no-progress"]  # fmt: skip


MODES = [["--mode", "reference"], ["--mode", "embedding"], ["--mode", "embedding", "--overlap"]]


@pytest.mark.parametrize("mode", MODES)
def test_train_and_evaluate_verify_the_artifact_once(
    mode: list[str], tiny_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = []
    real = artifact_module._tensor_digest
    monkeypatch.setattr(artifact_module, "_tensor_digest", lambda tensors: digests.append(1) or real(tensors))
    argv = ["train", "--task", "cartpole_swingup", "--encoder", str(tiny_artifact), "--intrinsic-coef", "0.2",
            "--log-dir", str(tmp_path), *mode, *TINY]  # fmt: skip
    assert main(argv) == 0
    assert len(digests) == 1  # metadata, env encoder, reward, extractor kwargs: one read
    assert main(["evaluate", "--run", str(tmp_path / "sac" / "cartpole_swingup_1"), "--episodes", "1",
                 "--no-progress"]) == 0  # fmt: skip
    assert len(digests) == (1 if mode[1] == "reference" else 2)  # the reference model carries its encoder weights
