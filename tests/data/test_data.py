"""Collection, on-disk format and sampling on real DMC tasks (small counts, fast preset)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from sb3_crptpro import make_dmc_env
from sb3_crptpro.data import CrossDomainDataset, DatasetError, DomainDataset, collect, read_manifest
from sb3_crptpro.data.sampler import find_domain_dirs
from sb3_crptpro.data.store import FLAG_FIRST, sha256_file

SMALL = {"image_size": 24, "action_repeat": 8, "render": "fast"}  # 125-step episodes
TASKS = ["cartpole_balance", "reacher_easy"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    collect(TASKS, out, transitions_per_domain=300, chunk_transitions=150, n_workers=1, progress=False, **SMALL)
    return out


def _replay_chunk(task: str, seed: int, chunk: int, n: int) -> tuple[list[np.ndarray], list[float], list[np.ndarray]]:
    """Independently re-run chunk `chunk` with a frame-stacking env: the observations the env itself returns."""
    env = make_dmc_env(task, frame_stack=3, **SMALL)
    sequence = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(task.encode()), chunk))
    rng = np.random.default_rng(sequence)
    obs, _ = env.reset(seed=int(sequence.generate_state(1)[0]))
    stacks, rewards, actions = [obs], [], []
    for t in range(n):
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        stacks.append(obs)
        rewards.append(reward)
        actions.append(action)
        if (terminated or truncated) and t + 1 < n:
            obs, _ = env.reset()
            stacks.append(obs)
    return stacks, rewards, actions


def test_round_trip_matches_env_observations(dataset_dir: Path) -> None:
    data = DomainDataset(dataset_dir / "cartpole_balance", frame_stack=3)
    assert len(data) == 300
    manifest = data.manifest
    assert manifest["counts"]["transitions"] == 300 and manifest["complete"]
    assert manifest["env"] == {
        "task": "cartpole_balance",
        "image_size": 24,
        "frame_stack": 3,
        "action_repeat": 8,
        "camera_id": 0,
        "render": "fast",
    }
    # chunk 1 = transitions 150..299: one full 125-step episode, then 25 steps of a new one
    stacks, rewards, actions = _replay_chunk("cartpole_balance", 0, 1, 150)
    obs, nxt, _ = data.transitions(np.arange(150, 300))
    env_pairs = [(stacks[i], stacks[i + 1]) for i in range(len(stacks) - 1) if i != 125]  # 125 = episode end
    assert len(env_pairs) == 150
    for row, (expected_obs, expected_next) in enumerate(env_pairs):
        np.testing.assert_array_equal(obs[row], expected_obs)
        np.testing.assert_array_equal(nxt[row], expected_next)
    shard = data.shards[1]
    non_first = (np.asarray(shard.flags) & FLAG_FIRST) == 0
    np.testing.assert_allclose(np.asarray(shard.arrays["rewards"])[non_first], rewards, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(shard.arrays["actions"])[non_first], np.stack(actions))


def test_episode_boundary_stacks(dataset_dir: Path) -> None:
    data = DomainDataset(dataset_dir / "reacher_easy", frame_stack=3)
    assert data.manifest["counts"]["episodes"] == 4  # 2 chunks x (125 + 25)
    frames = data.shards[0].frames
    # transition 0: the first step of an episode; transition 125: the first step of the second one
    for index, first in [(0, 0), (125, 126)]:
        obs, nxt, _ = data.transitions(np.array([index, index + 1]))
        f = [np.asarray(frames[first + i]) for i in range(3)]
        np.testing.assert_array_equal(obs[0], np.concatenate([f[0], f[0], f[0]]))
        np.testing.assert_array_equal(nxt[0], np.concatenate([f[0], f[0], f[1]]))
        np.testing.assert_array_equal(obs[1], np.concatenate([f[0], f[0], f[1]]))
        np.testing.assert_array_equal(nxt[1], np.concatenate([f[0], f[1], f[2]]))
    ids = data.episode_ids()
    assert ids[124] == 0 and ids[125] == 1 and ids[-1] == 3


def test_frames_stored_once(dataset_dir: Path) -> None:
    counts = read_manifest(dataset_dir / "cartpole_balance")["counts"]
    frame_bytes = 3 * 24 * 24
    assert counts["frames"] == counts["transitions"] + counts["episodes"]
    per_transition = counts["bytes"] / counts["transitions"]
    assert per_transition < 1.1 * frame_bytes + 64  # frame + state/action/reward/flags


def test_same_seed_same_dataset_any_worker_count(tmp_path: Path, dataset_dir: Path) -> None:
    kwargs = {"transitions_per_domain": 300, "chunk_transitions": 150, "progress": False, **SMALL}
    collect(TASKS, tmp_path / "two", n_workers=2, **kwargs)
    collect(["cartpole_balance"], tmp_path / "other", n_workers=1, seed=1, **kwargs)
    for task in TASKS:
        a = read_manifest(dataset_dir / task)["shards"]
        b = read_manifest(tmp_path / "two" / task)["shards"]
        assert [e["sha256"] for e in a] == [e["sha256"] for e in b]
    other = read_manifest(tmp_path / "other" / "cartpole_balance")["shards"]
    assert other[0]["sha256"] != read_manifest(dataset_dir / "cartpole_balance")["shards"][0]["sha256"]


def test_rerun_finished_is_noop(dataset_dir: Path) -> None:
    directory = dataset_dir / "cartpole_balance"
    before = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    collect(
        ["cartpole_balance"], dataset_dir, transitions_per_domain=300, chunk_transitions=150, progress=False, **SMALL
    )
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == before


def test_config_mismatch_on_resume_refused(dataset_dir: Path) -> None:
    with pytest.raises(DatasetError, match="image_size"):
        collect(["cartpole_balance"], dataset_dir, transitions_per_domain=300, chunk_transitions=150, progress=False,
                **{**SMALL, "image_size": 32})  # fmt: skip
    with pytest.raises(DatasetError, match="seed"):
        collect(["cartpole_balance"], dataset_dir, transitions_per_domain=300, chunk_transitions=150, seed=5,
                progress=False, **SMALL)  # fmt: skip
    with pytest.raises(FileExistsError, match="resume"):
        collect(["cartpole_balance"], dataset_dir, transitions_per_domain=300, chunk_transitions=150, resume=False,
                progress=False, **SMALL)  # fmt: skip


def _copy_domain(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_corrupted_shard_detected(dataset_dir: Path, tmp_path: Path) -> None:
    directory = _copy_domain(dataset_dir / "cartpole_balance", tmp_path / "cartpole_balance")
    shard = directory / "shard_00001.bin"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"shard_00001\.bin.*sha256"):
        DomainDataset(directory)
    DomainDataset(directory, verify=False)  # size still right: only the checksum can tell
    shard.write_bytes(bytes(raw[:-100]))
    with pytest.raises(DatasetError, match=r"shard_00001\.bin.*truncated"):
        DomainDataset(directory, verify=False)


def test_newer_format_refused(dataset_dir: Path, tmp_path: Path) -> None:
    directory = _copy_domain(dataset_dir / "reacher_easy", tmp_path / "reacher_easy")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["format_version"] = 99
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"format version 99.*upgrade"):
        DomainDataset(directory)
    with pytest.raises(DatasetError, match="not found"):
        DomainDataset(tmp_path)


def test_round_robin_and_mixed_balance(dataset_dir: Path) -> None:
    rr = CrossDomainDataset(dataset_dir, frame_stack=3, mode="round_robin")
    assert rr.tasks == sorted(TASKS) and len(rr) == 600
    g = torch.Generator().manual_seed(0)
    domains = [rr.sample(16, g).domain for _ in range(4)]
    assert [int(d[0]) for d in domains] == [0, 1, 0, 1]
    assert all((d == d[0]).all() for d in domains)
    mixed = CrossDomainDataset(dataset_dir, frame_stack=3, mode="mixed")
    batch = mixed.sample(101, g)
    counts = torch.bincount(batch.domain, minlength=2)
    assert abs(int(counts[0]) - int(counts[1])) <= 1
    assert batch.obs.shape == (101, 9, 24, 24) and batch.obs.dtype == torch.uint8
    assert batch.state.shape == (101, mixed.max_state_dim)
    # reacher's state (6 dims) is zero-padded to cartpole's (5)? whichever is larger: padding is zeros
    small = min(mixed.domains, key=lambda d: d.state_dim)
    rows = batch.domain == mixed.tasks.index(small.task)
    assert (batch.state[rows, small.state_dim :] == 0).all()


def test_sampling_is_seeded_and_resumable(dataset_dir: Path) -> None:
    a = CrossDomainDataset(dataset_dir, mode="round_robin")
    b = CrossDomainDataset(dataset_dir, mode="round_robin")
    ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a.sample(8, ga)
    b.load_state_dict(a.state_dict())
    gb.set_state(ga.get_state())
    x, y = a.sample(8, ga), b.sample(8, gb)
    assert torch.equal(x.obs, y.obs) and torch.equal(x.next_obs, y.next_obs) and torch.equal(x.domain, y.domain)
    with pytest.raises(ValueError, match="mode"):
        CrossDomainDataset(dataset_dir, mode="shuffled")
    # the same domains passed in another order: the state cannot be restored, and the error names the order to use
    dirs = find_domain_dirs(dataset_dir)
    reordered = CrossDomainDataset(dirs[::-1], mode="round_robin")
    with pytest.raises(DatasetError, match=f"recorded order \\({' '.join(a.tasks)}\\)"):
        reordered.load_state_dict(a.state_dict())
    with pytest.raises(DatasetError, match="sampler state is for tasks"):
        CrossDomainDataset(dirs[:1]).load_state_dict(a.state_dict())


_KILL_SCRIPT = """
import sys
from sb3_crptpro.data import collect
collect(["cartpole_balance"], sys.argv[1], transitions_per_domain=1200, chunk_transitions=60, n_workers=2,
        progress=False, image_size=24, action_repeat=8, render="fast")
"""


def _shards_done(directory: Path) -> int:
    try:
        return len(json.loads((directory / "manifest.json").read_text())["shards"])
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.mark.slow
def test_sigkill_and_resume(tmp_path: Path) -> None:
    rng = random.Random(1234)
    out = tmp_path / "killed"
    directory = out / "cartpole_balance"
    killed_at = []
    for threshold in (2, 7, 12):
        proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(out)], start_new_session=True)
        deadline = time.monotonic() + 120
        while _shards_done(directory) < threshold and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))  # land anywhere inside a chunk
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at.append(_shards_done(directory))
    assert killed_at[-1] < 20, "collection finished before the last kill: make it longer"
    with pytest.warns(UserWarning, match=r"is incomplete \(\d+ shards\).*collect --resume"):
        assert 0 < len(DomainDataset(directory)) < 1200  # what the killed collection left is read, with a warning
    subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(out)], check=True, timeout=300)
    manifest = read_manifest(directory)
    assert manifest["complete"] and manifest["counts"]["transitions"] == 1200
    assert [e["index"] for e in manifest["shards"]] == list(range(20))  # no gap, no duplicate
    for entry in manifest["shards"]:
        assert sha256_file(directory / entry["file"]) == entry["sha256"]
    # no leftover of the killed writers; the lock file of the one-writer lock stays (it is released with its process)
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [".lock", "manifest.json"] + [e["file"] for e in manifest["shards"]]
    )
    # identical to an uninterrupted run
    collect(["cartpole_balance"], tmp_path / "clean", transitions_per_domain=1200, chunk_transitions=60, n_workers=1,
            progress=False, **SMALL)  # fmt: skip
    clean = read_manifest(tmp_path / "clean" / "cartpole_balance")
    assert [e["sha256"] for e in clean["shards"]] == [e["sha256"] for e in manifest["shards"]]
    assert manifest == clean  # every file the run writes: the manifest too (it records no timings)


def test_inspect_verifies_shards_and_collect_redoes_a_truncated_one(tmp_path: Path, capsys) -> None:
    """Issue 14: `inspect` said `complete True` (rc 0) for a dataset whose shard was truncated; `pretrain` refused it.
    Now inspect checks sizes and checksums, and re-running `collect` collects the damaged shard again."""
    from sb3_crptpro.app.cli import main

    kwargs = {"transitions_per_domain": 200, "chunk_transitions": 100, "n_workers": 1, "progress": False, **SMALL}
    collect(["cartpole_balance"], tmp_path, **kwargs)
    domain = tmp_path / "cartpole_balance"
    assert main(["inspect", str(tmp_path)]) == 0
    assert "all 2 shards: size and sha256 match" in capsys.readouterr().out
    shard = domain / read_manifest(domain)["shards"][1]["file"]
    intact = shard.read_bytes()
    shard.write_bytes(intact[: len(intact) // 2])
    assert main(["inspect", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "verified" in captured.out and "FAILED: shard" in captured.out and "truncated" in captured.out
    assert "1 dataset(s) failed verification" in captured.err
    with pytest.raises(DatasetError, match="truncated"):
        DomainDataset(domain)
    shard.write_bytes(intact[:-1] + bytes([intact[-1] ^ 1]))  # same size, one flipped bit: only the sha256 sees it
    assert main(["inspect", str(tmp_path)]) == 1
    assert "sha256 does not match" in capsys.readouterr().out
    shard.write_bytes(intact[: len(intact) // 2])
    collect(["cartpole_balance"], tmp_path, resume=True, **kwargs)  # redoes the truncated shard, same seed
    assert shard.read_bytes() == intact and read_manifest(domain)["complete"]
    assert main(["inspect", str(tmp_path)]) == 0
