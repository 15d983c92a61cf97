"""One writer per run directory, dataset folder and pretraining work dir, with real processes: a second writer is
refused in one line, and a writer killed with ``kill -9`` leaves nothing locked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import folder_bytes

from sb3_crptpro.app.cli import main

CLI = [sys.executable, "-m", "sb3_crptpro.app.cli"]
HOLD = (
    "import sys\nfrom sb3_crptpro.common.folder_lock import exclusive_folder\n"
    "with exclusive_folder(sys.argv[1], 'test'):\n    print('held', flush=True)\n    sys.stdin.read()\n"
)


def _hold(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock (as a running command does) until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def _kill_9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], what: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{what} " in err and "is being written by another process" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_train_resume_is_refused_while_another_process_writes_the_run(
    run_0_2_0: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run, encoder = run_0_2_0
    argv = ["train", "--resume", str(run), "--steps", "60", "--encoder", str(encoder), "--no-progress"]
    before = folder_bytes(run)
    holder = _hold(run)
    try:
        _refused(argv, capsys, "run")
        assert folder_bytes(run) == before
    finally:
        _kill_9(holder)  # a crashed writer: its lock goes with it
    assert main(argv) == 0


def test_two_train_resume_at_once_one_trains_and_the_other_is_refused(run_0_2_0: tuple[Path, Path]) -> None:
    """The issue's case, two real `train --resume` processes started together: whichever comes second is refused
    (while the first runs: the lock; after it: its steps are done), and the run holds one run's episodes."""
    run, encoder = run_0_2_0
    argv = [*CLI, "train", "--resume", str(run), "--steps", "80", "--encoder", str(encoder), "--no-progress"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    err = next(err for rc, err in results if rc == 2)
    assert "is being written by another process" in err or "is not beyond the latest checkpoint" in err
    rows = (run / "0.monitor.csv").read_text().splitlines()[2:]
    # 20-step episodes (1000 physics steps at action repeat 50): 80 agent steps are 4 episodes, not 6
    assert [row.split(",")[1] for row in rows] == ["20"] * 4


def test_collect_is_refused_while_another_process_writes_the_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["collect", "--tasks", "cartpole_swingup", "--transitions", "20", "--out", str(tmp_path), "--workers",
            "1", "--image-size", "16", "--render", "fast", "--action-repeat", "50", "--no-progress"]  # fmt: skip
    holder = _hold(tmp_path / "cartpole_swingup")
    try:
        _refused(argv, capsys, "dataset")
        assert not (tmp_path / "cartpole_swingup" / "manifest.json").exists()
    finally:
        _kill_9(holder)
    assert main(argv) == 0


def test_pretrain_is_refused_while_another_process_writes_its_work_dir(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "enc.safetensors"
    base = ["pretrain", "--data", str(tiny_data), "--out", str(out), "--batch-size", "8", "--num-protos", "16",
            "--checkpoint-every", "1", "--no-progress"]  # fmt: skip
    assert main([*base, "--updates", "2"]) == 0
    work = tmp_path / "enc_pretrain"
    before = folder_bytes(work)
    holder = _hold(work)
    try:
        _refused([*base, "--updates", "3", "--resume"], capsys, "pretraining work dir")
        assert folder_bytes(work) == before  # sessions.txt too: the refused command is not recorded
    finally:
        _kill_9(holder)
    assert main([*base, "--updates", "3", "--resume"]) == 0


def test_pretrain_refuses_a_dataset_that_collect_is_still_writing(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reader does not take a half-written dataset: `pretrain` read 9 of 40 shards of a running `collect`,
    silently."""
    from sb3_crptpro.data.sampler import find_domain_dirs

    domain = find_domain_dirs(tiny_data)[0]
    out = tmp_path / "enc.safetensors"
    argv = ["pretrain", "--data", str(tiny_data), "--out", str(out), "--batch-size", "8", "--num-protos", "16",
            "--updates", "1", "--no-progress"]  # fmt: skip
    holder = _hold(domain)
    try:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"dataset {domain} is being written by another process (collect)" in err and len(err.splitlines()) == 1
        assert not out.exists() and not (tmp_path / "enc_pretrain").exists()
    finally:
        _kill_9(holder)
    assert main(argv) == 0 and out.is_file()


def test_two_new_runs_at_once_get_their_own_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `train` that finds its next run id taken between listing and creating it takes the following one."""
    from sb3_crptpro.app import training

    taken = tmp_path / "sac" / "cartpole_swingup_1"
    calls = iter([taken, tmp_path / "sac" / "cartpole_swingup_2"])
    taken.mkdir(parents=True)  # the other process made it after this one listed the folder
    monkeypatch.setattr(training, "next_run_dir", lambda *args: next(calls))
    assert training._new_run_dir(str(tmp_path), "sac", "cartpole_swingup") == tmp_path / "sac" / "cartpole_swingup_2"
