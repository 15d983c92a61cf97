"""Networks, augmentation, losses (against the oracle vectors), pretraining, checkpoints, DDP and artifacts."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from sb3_crptpro import load_artifact
from sb3_crptpro.app.cli import main
from sb3_crptpro.common.artifact import ArtifactError, loss_description, save_artifact
from sb3_crptpro.common.networks import Encoder, Projector, Prototypes, ema_update
from sb3_crptpro.data import CrossDomainDataset, collect
from sb3_crptpro.pretraining.augment import random_crop, random_shift
from sb3_crptpro.pretraining.losses import (
    comparative_loss,
    inverse_dynamics_loss,
    prototype_spread_loss,
    sinkhorn_knopp,
    total_loss,
)
from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer, save_random_init

ORACLE = json.loads((Path(__file__).parents[1] / "oracles" / "crptpro_cases.json").read_text())
TINY = {"batch_size": 16, "num_protos": 32, "log_every": 5, "progress": False}


def t64(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# ---------------------------------------------------------------- oracle vectors
def test_sinkhorn_matches_oracle() -> None:
    case = ORACLE["sinkhorn"]
    q = sinkhorn_knopp(t64(case["scores"]), case["T"], case["n_iters"])
    torch.testing.assert_close(q, t64(case["expected_q"]), rtol=1e-6, atol=1e-12)


def test_comparative_loss_matches_oracle() -> None:
    case = ORACLE["comparative_loss"]
    loss, q = comparative_loss(
        t64(case["pred_s"]), t64(case["proj_t"]), t64(case["prototypes"]), case["T"], case["n_iters"]
    )
    assert loss.item() == pytest.approx(case["expected_loss"], rel=1e-6)
    torch.testing.assert_close(q, t64(case["expected_targets_q"]), rtol=1e-6, atol=1e-12)


def test_spread_loss_matches_oracle() -> None:
    case = ORACLE["spread_loss"]
    assert prototype_spread_loss(t64(case["prototypes"])).item() == pytest.approx(case["expected"], rel=1e-6)


# ---------------------------------------------------------------- losses
def test_sinkhorn_marginals() -> None:
    scores = torch.randn(64, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gaps = []
    for iters in (1, 3, 10, 50):
        q = sinkhorn_knopp(scores, 0.1, iters)
        torch.testing.assert_close(q.sum(1), torch.ones(64, dtype=torch.float64))
        column_share = q.sum(0) / q.sum()
        gaps.append(float((column_share - 1 / 16).abs().max()))
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3


def test_comparative_loss_hand_computed() -> None:
    # scores_t = I with T = 1: exp(I) is symmetric, so Sinkhorn keeps q rows = [e, 1] / (e + 1) (and swapped)
    eye = torch.eye(2, dtype=torch.float64)
    loss, q = comparative_loss(eye, eye, eye, temperature=1.0, n_iters=3)
    e = math.e
    torch.testing.assert_close(q, t64([[e / (e + 1), 1 / (e + 1)], [1 / (e + 1), e / (e + 1)]]))
    assert loss.item() == pytest.approx(math.log(e + 1) - e / (e + 1), rel=1e-12)


def test_inverse_dynamics_loss_hand_computed() -> None:
    # two domains with 3 and 1 action entries; row 0 reads block 0 (all 3 entries), row 1 block 1 (its first entry)
    predicted = t64([[1.0, 2.0, 3.0, 7.0, 7.0, 7.0], [9.0, 9.0, 9.0, 0.5, 9.0, 9.0]])
    actions = t64([[0.0, 2.0, 5.0], [1.5, 0.0, 0.0]])
    loss = inverse_dynamics_loss(predicted, actions, torch.tensor([0, 1]), torch.tensor([3, 1]))
    assert loss.item() == pytest.approx((1 + 0 + 4 + 1) / 4)
    predicted.requires_grad_(True)
    inverse_dynamics_loss(predicted, actions, torch.tensor([0, 1]), torch.tensor([3, 1])).backward()
    unused = [[0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 1, 1]]  # other domains' blocks and the padded tail get no gradient
    assert torch.all(predicted.grad[torch.tensor(unused, dtype=torch.bool)] == 0)


def test_losses_numerically_safe() -> None:
    g = torch.Generator().manual_seed(1)
    huge = torch.randn(32, 8, generator=g) * 1e4
    q = sinkhorn_knopp(huge, 0.1, 3)
    assert torch.isfinite(q).all() and torch.allclose(q.sum(1), torch.ones(32))
    pred, proj, protos = (torch.randn(32, 8, generator=g) * 1e6 for _ in range(3))
    loss, _ = comparative_loss(pred.requires_grad_(), proj, protos, temperature=1e-3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    duplicates = torch.ones(4, 8)  # identical prototypes: S = 1 everywhere
    assert torch.isfinite(prototype_spread_loss(duplicates))
    assert total_loss(torch.tensor(1.0), torch.tensor(2.0), 0.5).item() == 2.0


def _two_protos(angle: float) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0], [math.cos(angle), math.sin(angle)]], dtype=torch.float64)


def test_spread_loss_pushes_prototypes_apart() -> None:
    losses = [prototype_spread_loss(_two_protos(a)).item() for a in (0.1, 0.8, 1.5, 2.5)]
    assert losses == sorted(losses, reverse=True)
    protos = _two_protos(0.3).requires_grad_()
    prototype_spread_loss(protos).backward()
    moved = F.normalize(protos.detach() - 0.1 * protos.grad, dim=1)
    assert float(moved[0] @ moved[1]) < math.cos(0.3)


# ---------------------------------------------------------------- networks and augmentation
def test_encoder_shapes_and_ema() -> None:
    assert Encoder((9, 84, 84)).repr_dim == 32 * 35 * 35
    encoder = Encoder((6, 64, 64))
    assert encoder(torch.zeros(2, 6, 64, 64, dtype=torch.uint8)).shape == (2, encoder.repr_dim)
    protos = Prototypes(8, 5)
    torch.testing.assert_close(protos.weight.norm(dim=1), torch.ones(5))
    target, online = Projector(4, 3), Projector(4, 3)
    torch.nn.init.zeros_(target.linear.weight)
    torch.nn.init.ones_(online.linear.weight)
    ema_update(target, online, 0.05)
    assert torch.equal(target.linear.weight, torch.full((3, 4), 0.05))


def test_random_shift_bounded_and_seeded() -> None:
    x = torch.arange(2 * 3 * 10 * 10, dtype=torch.float32).reshape(2, 3, 10, 10)
    out = random_shift(x, 4, torch.Generator().manual_seed(0))
    padded = F.pad(x, (4, 4, 4, 4), mode="replicate")
    for b in range(2):
        matches = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(out[b], padded[b, :, dy : dy + 10, dx : dx + 10])
        ]
        assert len(matches) == 1  # a pure integer shift of at most 4 px
    again = random_shift(x, 4, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    many = random_shift(x.repeat(8, 1, 1, 1), 4, torch.Generator().manual_seed(1))
    assert not all(torch.equal(many[0], many[i]) for i in range(1, 16))
    frames = torch.randint(0, 256, (4, 9, 12, 12), dtype=torch.uint8)
    shifted = random_shift(frames, 4, torch.Generator().manual_seed(0))
    assert shifted.dtype == torch.uint8
    assert torch.equal(shifted.float(), random_shift(frames.float(), 4, torch.Generator().manual_seed(0)))
    crop = random_crop(frames, 8, torch.Generator().manual_seed(0))
    assert crop.shape == (4, 9, 8, 8)
    with pytest.raises(ValueError, match="crop size"):
        random_crop(frames, 20)


# ---------------------------------------------------------------- pretraining on a real (tiny) dataset
def test_short_fit_lowers_loss(tiny_data: Path, tmp_path: Path) -> None:
    trainer = Pretrainer(PretrainConfig(updates=60, lr=1e-3, **TINY), CrossDomainDataset(tiny_data), tmp_path)
    stats = trainer.fit()
    assert stats["updates"] == 60
    assert np.mean(trainer.losses[-10:]) < np.mean(trainer.losses[:10])
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("loss_comp", "loss_intr", "assign_entropy", "n_used", "usage_entropy", "cos_mean", "cos_max",
                   "n_used_raw", "usage_entropy_raw"):  # fmt: skip
        assert column in header
    rows = (tmp_path / "metrics.csv").read_text().splitlines()[1:]
    used = [float(dict(zip(header, r.split(","), strict=True))["n_used_raw"]) for r in rows]
    assert all(1 <= u <= TINY["batch_size"] for u in used)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_alpha_zero_is_plain_proto_rl(tiny_data: Path) -> None:
    trainer = Pretrainer(PretrainConfig(updates=2, alpha=0.0, **TINY), CrossDomainDataset(tiny_data))
    metrics = trainer.step()
    assert metrics["loss"] == pytest.approx(metrics["loss_comp"], abs=1e-7) and metrics["loss_intr"] != 0


def test_loss_description_names_each_weighted_loss() -> None:
    assert loss_description({}) == "CRPTpro"  # an artifact from before the auxiliary loss
    assert loss_description({"inverse_dynamics": 0.0}) == "CRPTpro"
    assert loss_description({"inverse_dynamics": 1.0}) == "CRPTpro + inverse dynamics (weight 1)"
    assert loss_description({"inverse_dynamics": 0.25, "lr": 1e-4}) == "CRPTpro + inverse dynamics (weight 0.25)"


def test_inverse_dynamics_trains_encoder_and_head_and_stays_out_of_the_artifact(
    tiny_data: Path, tmp_path: Path
) -> None:
    data = CrossDomainDataset(tiny_data, mode="mixed")
    batch = data.sample(16, torch.Generator().manual_seed(0))
    assert batch.action.shape == (16, 2) and batch.action.dtype == torch.float32  # reacher 2, cartpole 1 (padded)
    cartpole = batch.domain == data.tasks.index("cartpole_swingup")
    assert torch.all(batch.action[cartpole, 1] == 0) and torch.all(batch.action[~cartpole] != 0)
    assert torch.all(batch.action[cartpole, 0] != 0)  # a transition's action, never a first frame's zero
    assert torch.all(batch.action.abs() <= 1)
    plain = Pretrainer(PretrainConfig(updates=1, **TINY), CrossDomainDataset(tiny_data))
    inverse = Pretrainer(PretrainConfig(updates=1, inverse_dynamics=2.0, **TINY), CrossDomainDataset(tiny_data))
    head = [p.detach().clone() for p in inverse.online.inverse_head.parameters()]
    a, b = plain.step(), inverse.step()
    assert b["loss_comp"] == pytest.approx(a["loss_comp"])  # same seed, same batch, same initial networks
    assert b["loss"] == pytest.approx(b["loss_comp"] + 0.005 * b["loss_intr"] + 2.0 * b["loss_inverse"], rel=1e-6)
    assert "loss_inverse" not in a and b["loss_inverse"] > 0
    assert not torch.equal(plain.online.encoder.convs[0].weight, inverse.online.encoder.convs[0].weight)
    assert all(not torch.equal(p, q) for p, q in zip(head, inverse.online.inverse_head.parameters(), strict=True))
    saved = inverse.save(tmp_path / "enc.safetensors")
    assert load_artifact(saved).metadata["config"]["inverse_dynamics"] == 2.0
    assert set(load_file(saved)) == set(load_file(plain.save(tmp_path / "plain.safetensors")))  # no head tensors
    with pytest.raises(ValueError, match="inverse_dynamics"):
        PretrainConfig(inverse_dynamics=-1.0)


def test_checkpoint_resume_same_trajectory(tiny_data: Path, tmp_path: Path) -> None:
    full = Pretrainer(PretrainConfig(updates=12, checkpoint_every=0, **TINY), CrossDomainDataset(tiny_data))
    full.fit()
    first = Pretrainer(PretrainConfig(updates=7, checkpoint_every=7, **TINY), CrossDomainDataset(tiny_data), tmp_path)
    first.fit()
    resumed = Pretrainer(
        PretrainConfig(updates=12, checkpoint_every=7, **TINY), CrossDomainDataset(tiny_data), tmp_path
    )
    resumed.fit(resume=True)
    assert resumed.losses == full.losses
    for a, b in zip(resumed.online.parameters(), full.online.parameters(), strict=True):
        assert torch.equal(a, b)
    other = Pretrainer(PretrainConfig(updates=12, lr=1e-3, **TINY), CrossDomainDataset(tiny_data), tmp_path)
    with pytest.raises(ValueError, match=r"lr 0\.0001 then, 0\.001 now"):
        other.fit(resume=True)
    fresh = Pretrainer(PretrainConfig(updates=12, **TINY), CrossDomainDataset(tiny_data), tmp_path)
    with pytest.raises(ValueError, match="holds an earlier run"):  # not resumed: metrics.csv would mix two runs
        fresh.fit()
    again = Pretrainer(PretrainConfig(updates=12, checkpoint_every=7, **TINY), CrossDomainDataset(tiny_data), tmp_path)
    stats = again.fit(resume=True)  # finished: nothing to train, the last logged metrics are its final ones
    assert stats["updates"] == 12 and math.isfinite(stats["final"]["loss"])
    fewer = Pretrainer(PretrainConfig(updates=10, checkpoint_every=7, **TINY), CrossDomainDataset(tiny_data), tmp_path)
    with pytest.raises(ValueError, match="at update 12, past updates=10"):
        fewer.fit(resume=True)
    config = PretrainConfig(updates=12, checkpoint_every=7, **TINY)
    stacked = Pretrainer(config, CrossDomainDataset(tiny_data, frame_stack=2), tmp_path)
    with pytest.raises(ValueError, match=r"observations \(9, 24, 24\), not \(6, 24, 24\)"):
        stacked.fit(resume=True)
    # the same tasks re-collected with another seed: same names, other frames
    collect(["cartpole_swingup", "reacher_easy"], tmp_path / "recollected", transitions_per_domain=200,
            chunk_transitions=100, n_workers=1, image_size=24, action_repeat=20, render="fast", seed=1,
            progress=False)  # fmt: skip
    recollected = Pretrainer(config, CrossDomainDataset(tmp_path / "recollected"), tmp_path)
    with pytest.raises(ValueError, match=r"other data \(cartpole_swingup, reacher_easy: manifest checksums differ"):
        recollected.fit(resume=True)


@pytest.mark.slow
def test_ddp_two_gloo_processes(tiny_data: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).parent / "ddp_fit.py"), str(tiny_data), str(tmp_path)]  # fmt: skip
    run = subprocess.run(cmd, timeout=300, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP keeps replicas identical
    assert ranks[0]["losses"] != ranks[1]["losses"]  # ...while each rank samples its own batches
    assert load_artifact(tmp_path / "encoder.safetensors").metadata["stats"]["updates"] == 4
    state = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)
    assert len(state["generators"]) == 2


# ---------------------------------------------------------------- artifact
@pytest.fixture
def artifact_path(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    encoder = Encoder((9, 24, 24))
    return save_artifact(tmp_path / "enc.safetensors", encoder, Projector(encoder.repr_dim, 16), Prototypes(16, 8),
                         config={"alpha": 0.005}, stats={"updates": 3}, render="fast", tasks=["cheetah_run"],
                         datasets={"cheetah_run": "ab" * 32})  # fmt: skip


def test_random_init_equals_pretrainer_before_its_first_update(tiny_data: Path, tmp_path: Path) -> None:
    config = PretrainConfig(updates=2, batch_size=8, num_protos=16, seed=3, progress=False, checkpoint_every=0)
    before = Pretrainer(config, CrossDomainDataset(tiny_data)).save(tmp_path / "update0.safetensors")
    trainer = Pretrainer(config, CrossDomainDataset(tiny_data))
    trainer.fit()
    pretrained = trainer.save(tmp_path / "pretrained.safetensors")
    torch.manual_seed(7)
    expected_draw = torch.rand(3)
    torch.manual_seed(7)
    derived = save_random_init(pretrained, tmp_path / "random_init.safetensors")
    assert torch.equal(torch.rand(3), expected_draw)  # the caller's RNG stream is untouched
    meta = load_artifact(derived).metadata
    assert meta["tensor_sha256"] == load_artifact(before).metadata["tensor_sha256"]
    assert meta["tensor_sha256"] != load_artifact(pretrained).metadata["tensor_sha256"]
    assert meta["stats"]["updates"] == 0
    assert meta["provenance"]["random_init_of"] == load_artifact(pretrained).metadata["tensor_sha256"]
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped encoder"):
        save_random_init(tmp_path / "missing.safetensors", tmp_path / "x.safetensors")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save_random_init(pretrained, tmp_path)
    assert not list(tmp_path.glob(".*.tmp"))  # refused before writing


def test_artifact_round_trip_bit_exact(artifact_path: Path) -> None:
    art = load_artifact(artifact_path)
    again = load_artifact(artifact_path)
    for a, b in zip(art.encoder.state_dict().values(), again.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    path2 = save_artifact(artifact_path.with_name("copy.safetensors"), art.encoder, art.projector, art.prototypes,
                          config=art.metadata["config"], stats=art.metadata["stats"], render="fast",
                          tasks=["cheetah_run"], datasets={"cheetah_run": "ab" * 32})  # fmt: skip
    assert load_artifact(path2).metadata["tensor_sha256"] == art.metadata["tensor_sha256"]
    assert art.obs_shape == (9, 24, 24) and art.frame_stack == 3 and art.image_size == 24
    assert art.render_preset == "fast" and art.metadata["tasks"] == ["cheetah_run"]
    assert art.metadata["format_version"] == 1 and art.metadata["package_version"]


def test_tampered_or_truncated_artifact_refused(artifact_path: Path, tmp_path: Path) -> None:
    raw = bytearray(artifact_path.read_bytes())
    flipped = tmp_path / "flipped.safetensors"
    raw[-50] ^= 0x01  # inside the last tensor's data
    flipped.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(flipped)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(artifact_path.read_bytes()[:-100])
    with pytest.raises(ArtifactError, match="truncated or corrupted"):
        load_artifact(truncated)
    pickled = tmp_path / "pickled.safetensors"
    torch.save({"x": torch.ones(2)}, pickled)
    with pytest.raises(ArtifactError):
        load_artifact(pickled)
    with pytest.raises(FileNotFoundError):
        load_artifact(tmp_path / "missing.safetensors")


def test_newer_artifact_version_refused(artifact_path: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    meta = load_artifact(artifact_path).metadata
    meta["format_version"] = 7
    newer = tmp_path / "newer.safetensors"
    save_file(load_file(str(artifact_path)), str(newer), metadata={"sb3_crptpro": json.dumps(meta)})
    with pytest.raises(ArtifactError, match="version 7"):
        load_artifact(newer)


def test_a_task_in_two_datasets_keeps_both_checksums(tiny_data: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """The same task collected at another action repeat: both manifests are recorded (the second as ``task #2``),
    and resuming on other data for either one is refused."""
    from sb3_crptpro.data import collect
    from sb3_crptpro.data.store import manifest_sha256

    other = tmp_path / "ar40"
    collect(["reacher_easy"], other, transitions_per_domain=100, chunk_transitions=100, n_workers=1, image_size=24,
            action_repeat=40, render="fast", progress=False)  # fmt: skip
    out = tmp_path / "enc.safetensors"
    argv = ["pretrain", "--data", str(tiny_data), str(other), "--out", str(out), "--updates", "2", "--batch-size", "8",
            "--num-protos", "16", "--checkpoint-every", "1", "--inverse-dynamics", "1.0", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    meta = load_artifact(out).metadata
    assert meta["tasks"] == ["cartpole_swingup", "reacher_easy", "reacher_easy"]
    assert meta["datasets"] == {"cartpole_swingup": manifest_sha256(tiny_data / "cartpole_swingup"),
                                "reacher_easy": manifest_sha256(tiny_data / "reacher_easy"),
                                "reacher_easy #2": manifest_sha256(other / "reacher_easy")}  # fmt: skip
    assert meta["datasets"]["reacher_easy"] != meta["datasets"]["reacher_easy #2"]
    swapped = ["pretrain", "--data", str(other), str(tiny_data), *argv[4:-1], "--resume", "--updates", "3"]
    capsys.readouterr()
    assert main(swapped) != 0
    assert "written on other data (reacher_easy, reacher_easy #2: manifest checksums differ)" in capsys.readouterr().err


def test_pretrain_cli(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "enc.safetensors"
    argv = ["pretrain", "--data", str(tiny_data), "--out", str(out), "--updates", "6", "--batch-size", "8",
            "--num-protos", "16", "--log-every", "3", "--checkpoint-every", "3", "--inverse-dynamics", "0.5",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    art = load_artifact(out)
    assert art.metadata["config"]["num_protos"] == 16 and art.metadata["stats"]["updates"] == 6
    assert art.metadata["config"]["inverse_dynamics"] == 0.5
    assert "loss_inverse" in (tmp_path / "enc_pretrain" / "metrics.csv").read_text().splitlines()[0]
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    assert re.search(r"config\.inverse_dynamics +0\.5", capsys.readouterr().out)
    assert sorted(art.metadata["datasets"]) == ["cartpole_swingup", "reacher_easy"]
    assert (tmp_path / "enc_pretrain" / "checkpoint.pt").is_file()
    first = art.metadata["stats"]["wall_time_s"]
    assert main([*argv[:-1], "--resume", "--updates", "8", "--no-progress"]) == 0
    stats = load_artifact(out).metadata["stats"]
    assert stats["updates"] == 8 and stats["wall_time_s"] > stats["session_wall_time_s"]  # both sessions counted
    assert stats["wall_time_s"] >= first  # the first session ran to its final checkpoint at update 6
    capsys.readouterr()
    assert main([*argv[:-1], "--resume", "--updates", "8", "--no-progress"]) == 0  # nothing left: re-saved as is
    assert "(8 updates, none left to train," in capsys.readouterr().out
    assert load_artifact(out).metadata["stats"]["wall_time_s"] == pytest.approx(stats["wall_time_s"], abs=1.0)
    assert main(["pretrain", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    shutil.rmtree(tmp_path / "enc_pretrain")


def test_written_files_get_default_permissions(tiny_data: Path, tmp_path: Path) -> None:
    """Artifacts and checkpoints are renamed from temporary files, which are 0600; users expect 0666 less umask."""
    import os

    mask = os.umask(0o022)
    try:
        trainer = Pretrainer(PretrainConfig(updates=1, checkpoint_every=1, **TINY), CrossDomainDataset(tiny_data),
                             tmp_path / "work")  # fmt: skip
        trainer.fit()
        artifact = trainer.save(tmp_path / "enc.safetensors")
        assert artifact.stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "work" / "checkpoint.pt").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(mask)


def test_a_file_given_as_dataset_is_named_as_such(artifact_path: Path) -> None:
    from sb3_crptpro.data import DatasetError

    with pytest.raises(DatasetError, match="is a file; a dataset is a folder"):
        CrossDomainDataset(artifact_path)
    with pytest.raises(DatasetError, match="does not exist"):
        CrossDomainDataset(artifact_path.with_name("missing"))


@pytest.mark.slow
def test_kill_9_then_resume_writes_what_an_uninterrupted_run_writes(tiny_data: Path, tmp_path: Path) -> None:
    import os
    import signal
    import time

    def command(name: str) -> list[str]:
        return [sys.executable, "-m", "sb3_crptpro.app.cli", "pretrain", "--data", str(tiny_data), "--out",
                str(tmp_path / f"{name}.safetensors"), "--updates", "60", "--batch-size", "16", "--num-protos", "32",
                "--checkpoint-every", "10", "--log-every", "5", "--probe-frames", "8", "--no-progress"]  # fmt: skip

    # both fresh runs on 2 threads, whatever the load when each starts (the count changes the float results); the
    # resumed session is not told: it takes the count its checkpoint recorded
    pinned = {**os.environ, "OMP_NUM_THREADS": "2"}
    subprocess.run(command("whole"), check=True, capture_output=True, timeout=600, env=pinned)
    proc = subprocess.Popen(command("killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=pinned)
    metrics = tmp_path / "killed_pretrain" / "metrics.csv"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().count("\n") > 5):  # rows past the checkpoint at update 20
        assert proc.poll() is None, "pretraining ended before the kill: make it longer"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    unpinned = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    subprocess.run([*command("killed"), "--resume"], check=True, capture_output=True, timeout=600, env=unpinned)

    def rows(name: str) -> list[dict[str, str]]:
        with open(tmp_path / f"{name}_pretrain" / "metrics.csv", newline="") as fh:
            return [{k: v for k, v in r.items() if k != "updates_per_s"} for r in csv.DictReader(fh)]  # timing

    assert rows("killed") == rows("whole") and len(rows("whole")) == 12  # no duplicated or missing update
    whole, killed = (load_artifact(tmp_path / f"{n}.safetensors").metadata for n in ("whole", "killed"))
    assert killed["tensor_sha256"] == whole["tensor_sha256"]
    assert killed["stats"]["diagnostics"] == whole["stats"]["diagnostics"]
    # the wall time counts the session before the kill (up to its checkpoint) and the resumed one
    assert killed["stats"]["wall_time_s"] > killed["stats"]["session_wall_time_s"] > 0
    # the provenance names both sessions, the killed one first; a run trained in one go records its one command
    first, second = killed["provenance"]["sessions"]
    assert second == first + " --resume" and killed["provenance"]["command"] == second
    assert "sessions" not in whole["provenance"] and whole["provenance"]["command"].startswith("sb3-crptpro pretrain")
    inspect = [sys.executable, "-m", "sb3_crptpro.app.cli", "inspect", str(tmp_path / "killed.safetensors")]
    shown = subprocess.run(inspect, check=True, capture_output=True, text=True).stdout
    assert "session 1 of 2" in shown and "session 2 of 2" in shown
    # the machine the run trained on: float kernels differ per CPU type, so the same seed differs across them
    assert whole["provenance"]["platform"] == killed["provenance"]["platform"]
    assert re.fullmatch(r"torch \S+ on cpu \(CPU kernels \w+, \w+\)", whole["provenance"]["platform"])
    assert re.search(r"made on +" + re.escape(whole["provenance"]["platform"]), shown)
