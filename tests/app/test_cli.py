"""The `sb3-crptpro` command line: help, argument errors and a real collection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sb3_crptpro.app.cli import build_parser, main
from sb3_crptpro.data import read_manifest

SUBCOMMANDS = ["collect", "pretrain", "train", "evaluate", "inspect", "demo"]


@pytest.mark.parametrize("command", [[], *[[c] for c in SUBCOMMANDS]])
def test_help_documents_every_option(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: sb3-crptpro" in out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    target = sub.choices[command[0]] if command else parser
    documented = [a for a in target._actions if a.dest not in ("help", "command")]
    assert documented or not command
    for action in documented:  # options and positionals
        assert (action.option_strings[-1] if action.option_strings else action.dest) in out
        assert action.help, f"{command} {action.option_strings or action.dest} has no help text"
    if not command:
        for name in SUBCOMMANDS:
            assert name in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["collect", "--tasks", "cheetah_run", "--transitions", "0", "--out", "x"], "positive integer"),
        (
            ["collect", "--tasks", "cheetah_run", "--transitions", "10", "--out", "x", "--render", "pretty"],
            "invalid choice",
        ),
        (["collect", "--tasks", "cheeta_run", "--transitions", "10", "--out", "x"], "Did you mean: cheetah_run"),
        (["train", "--task", "cheetah_run", "--encoder", "missing.safetensors"], "missing.safetensors"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--algo", "ppo"], "invalid choice"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--steps", "-5"], "positive integer"),
        (["evaluate", "--run", "nowhere"], "not a training run"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--mode", "pixels"], "invalid choice"),
        (["train", "--encoder", "e"], "required: --task (or --resume RUN_DIR)"),
        (["train", "--resume", "nowhere"], "not a training run"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--checkpoint-every", "x"], "invalid int value"),
        (["demo", "--train-mode", "state"], "invalid choice"),
        (["inspect", "nothing_here"], "neither a file nor a shipped encoder (shipped: dmc-64px"),
        (["inspect"], "give an artifact, a shipped encoder's name or a dataset folder (or --list)"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--intrinsic-coef", "nan"], "finite number >= 0"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--intrinsic-coef", "inf"], "finite number >= 0"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--learning-starts", "-5"], "learning_starts must be"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--buffer-size", "1"], "smaller than one batch"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--seed", "-1"], "expected an integer >= 0, got -1"),
        (["train", "--task", "cheetah_run", "--encoder", "e", "--device", "bogus"], "device must be auto, cpu"),
        (["evaluate", "--run", "nowhere", "--seed", "-1"], "expected an integer >= 0, got -1"),
        (["pretrain", "--data", "d", "--out", "e.safetensors", "--checkpoint-every", "-1"], "checkpoint_every >= 0"),
        (["pretrain", "--data", "d", "--out", "e.safetensors", "--pad", "-1"], "pad >= 0"),
        (["pretrain", "--data", "d", "--out", "e.safetensors", "--device", "bogus"], "device must be auto, cpu"),
        (["pretrain", "--data", "d", "--out", "e.safetensors", "--lr", "nan"], "need finite values"),
        (
            [
                "collect",
                "--tasks",
                "cheetah_run",
                "--transitions",
                "9",
                "--out",
                "x",
                "--image-size",
                "16",
                "--frame-stack",
                "6",
            ],
            "SB3 would read (18, 16, 16) as channel-last",
        ),
        (["pretrain", "--data", "d", "--out", "."], "is a folder: give the artifact's file path"),
        (["demo", "--intrinsic-coef", "-1"], "must be >= 0"),
        (["demo", "--unseen-task", "Hopper-v5"], "is a Gymnasium id: the demo takes DeepMind Control tasks"),
        (["demo", "--tasks", "walker_run", "walker_run"], "duplicate tasks"),
        (["demo", "--image-size", "8"], "9 channels, more than the 8 px frame side"),
        (["demo", "--unseen-task", "walker_walk"], "its domain is among the pretraining domains"),
        (["demo", "--seen-task", "finger_spin"], "its domain is not among the encoder's pretraining domains"),
        (["demo", "--seeds", "1", "1"], "seeds must be distinct"),
        (["demo", "--seeds", "-1"], "expected an integer >= 0, got -1"),
        (["demo", "--encoder", "nothing_here"], "neither a file nor a shipped encoder"),
        # an existing folder is named as one, with what to pass instead
        (["train", "--task", "cartpole_swingup", "--encoder", "."], "is a folder, not an artifact file: it holds no"),
        (["demo", "--encoder", "."], "is a folder, not an artifact file"),
    ],
)
def test_bad_arguments_one_clear_line(argv: list[str], message: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sb3_crptpro.app.cli", *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_collect_command_on_real_domains(tmp_path: Path) -> None:
    argv = ["collect", "--tasks", "cheetah_run", "walker_run", "--transitions", "40", "--out", str(tmp_path),
            "--workers", "1", "--image-size", "16", "--render", "fast", "--chunk", "25", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    for task in ("cheetah_run", "walker_run"):
        manifest = read_manifest(tmp_path / task)
        assert manifest["counts"]["transitions"] == 40 and manifest["complete"]
        assert [e["transitions"] for e in manifest["shards"]] == [25, 15]
    assert main(argv) == 0  # finished: a no-op
    changed = [("paper" if a == "fast" else a) for a in argv]
    assert main(changed) == 2  # same folder, other render preset: refused


def test_demo_refuses_before_writing_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sb3_crptpro import save_random_init

    random_init = save_random_init("dmc-64px", tmp_path / "random_init.safetensors")
    assert main(["demo", "--out", str(tmp_path / "demo"), "--encoder", str(random_init)]) == 2
    assert "was never trained (a random init)" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "demo"), "--unseen-task", "Hopper-v5"]) == 2
    assert not (tmp_path / "demo").exists()


def test_pretrain_refuses_a_stack_sb3_would_transpose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["collect", "--tasks", "cheetah_run", "--transitions", "20", "--out", str(tmp_path / "data"), "--workers",
            "1", "--image-size", "16", "--render", "fast", "--action-repeat", "50", "--no-progress"]  # fmt: skip
    assert main(argv) == 0  # 9 channels at 16 px: fine
    capsys.readouterr()
    argv = ["pretrain", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "e.safetensors"), "--updates", "1",
            "--batch-size", "4", "--frame-stack", "6", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "SB3 would read (18, 16, 16) as channel-last" in err and "Traceback" not in err
    assert not (tmp_path / "e.safetensors").exists()


def test_ctrl_c_says_how_to_resume(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sb3_crptpro.data.collection as collection

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(collection, "collect", interrupted)
    argv = ["collect", "--tasks", "cartpole_swingup", "--transitions", "10", "--out", "x", "--chunk", "250"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted; re-run the same command to resume") and "at most 250 transitions" in err


def test_pretrain_on_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "encoder.safetensors").write_bytes(b"not a dataset")
    proc = subprocess.run([sys.executable, "-m", "sb3_crptpro.app.cli", "pretrain", "--data", "encoder.safetensors",
                           "--out", "x.safetensors"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is a file; a dataset is a folder" in proc.stderr and "does not exist" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_pretrain_refuses_frames_too_small_for_the_encoder_and_a_pad_past_half_the_frame(tmp_path: Path) -> None:
    for size, stack in ((8, "2"), (32, "3")):  # 8 px takes at most 2 frames (SB3 reads 9 channels as channel-last)
        out = str(tmp_path / str(size))
        assert main(["collect", "--tasks", "cartpole_swingup", "--transitions", "20", "--out", out, "--image-size",
                     str(size), "--frame-stack", stack, "--render", "fast", "--workers", "1",
                     "--no-progress"]) == 0  # fmt: skip
    for argv, message in [
        (["--data", str(tmp_path / "8"), "--frame-stack", "2"],
         "frames of 8x8 px are too small for the 4-layer conv encoder: it needs at least 15 px"),
        (["--data", str(tmp_path / "32"), "--pad", "40"], "pad 40 is more than half of the 32 px frames"),
    ]:  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "sb3_crptpro.app.cli", "pretrain", *argv, "--out",
                               str(tmp_path / "e.safetensors"), "--updates", "2", "--batch-size", "4"],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_inspect_of_a_folder_holding_an_artifact_names_it(
    tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    shutil.copyfile(tiny_artifact, tmp_path / "enc.safetensors")
    capsys.readouterr()
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no dataset" in err and f"to inspect an artifact, pass its file: {tmp_path / 'enc.safetensors'}" in err
    assert main(["inspect", str(tmp_path / "enc.safetensors")]) == 0


def test_evaluate_video_without_the_video_extra_is_one_line_before_any_episode(
    run_0_2_0: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate --video` after a plain `pip install` (no imageio-ffmpeg) evaluated every episode, then ended in a
    traceback (found running the README's commands in a fresh venv)."""
    run, _ = run_0_2_0
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed: importing it raises ImportError
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--episodes", "1", "--video"]) == 2
    out, err = capsys.readouterr()
    assert "writing mp4 needs imageio-ffmpeg: pip install 'sb3-crptpro[video]'" in err and len(err.splitlines()) == 1
    assert "episode" not in out and not list(run.glob("*.mp4"))
