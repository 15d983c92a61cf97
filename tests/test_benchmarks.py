"""Benchmark scripts that the docs quote run (the prepared GPU reproduction at tiny sizes, the budget figure)."""

from __future__ import annotations

import importlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def _benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (it imports its neighbours, so the folder joins sys.path briefly)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def _downstream():
    return _benchmark("downstream")


def test_gpu_reproduce_dry_run_on_cpu_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "repro"
    argv = [sys.executable, str(BENCHMARKS / "gpu_reproduce.py"), "--device", "cpu", "--fraction", "0.0001",
            "--out", str(out), "--tasks", "cartpole_swingup", "reacher_easy", "--unseen-tasks", "point_mass_easy",
            "--image-size", "24", "--action-repeat", "50", "--batch-size", "8", "--num-protos", "16", "--seeds", "0",
            "1", "--eval-episodes", "1", "--workers", "1", "--render", "fast", "--preset", "quick",
            "--downstream-task", "reacher_easy", "--downstream-action-repeat", "50"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["probe"]) == {"alpha=0.005", "alpha=0", "random init"}
    for encoder in results["probe"].values():
        assert set(encoder["tasks"]) == {"cartpole_swingup", "reacher_easy", "point_mass_easy"}
        assert not encoder["tasks"]["point_mass_easy"]["seen"]
    assert [r["seed"] for r in results["downstream"]["alpha=0.005"]["runs"]] == [0, 1]
    report = (out / "report.md").read_text()
    assert "| point_mass_easy | no |" in report and "seed 0:" in report and "seed 1:" in report
    for png in ("probe_r2.png", "downstream.png", "pretraining_alpha_0.005.png"):
        assert (out / png).stat().st_size > 5000
    # every seed's line is printed
    assert proc.stdout.count("downstream alpha=0.005") == 2

    again = subprocess.run(argv, capture_output=True, text=True, timeout=900)  # resumes: everything cached
    assert again.returncode == 0, again.stderr[-3000:]
    assert (
        "pretrained" not in again.stdout
        and json.loads((out / "results.json").read_text())["downstream"] == (results["downstream"])
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown on machines without CUDA")
def test_gpu_reproduce_refuses_without_cuda() -> None:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_reproduce.py"), "--out", "unused"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode != 0 and "no CUDA device" in proc.stderr


def _budget_row(folder: Path, variant: str, seed: int, updates: int, conv: float, proj: float) -> None:
    domains = ("cheetah_run", "walker_run", "reacher_easy", "cartpole_swingup", "finger_spin")
    row = {f"r2_{kind}/{d}": value for d in domains for kind, value in (("conv", conv), ("proj", proj))}
    (folder / "rows").mkdir(parents=True, exist_ok=True)
    (folder / "rows" / f"{variant}_seed{seed}_{updates}.json").write_text(json.dumps(row))


def test_pretrain_budget_reads_collapse_rows_and_plots_the_gain(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    for seed in (0, 1):
        _budget_row(small, "default", seed, 600, 0.40 + 0.02 * seed, 0.20)
        _budget_row(small, "random_init", seed, 600, 0.36, 0.13)
        _budget_row(large, "default", seed, 6000, 0.46, 0.30 + 0.02 * seed)
        _budget_row(large, "random_init", seed, 6000, 0.36, 0.13)
    _budget_row(large, "default", 7, 6000, 0.0, 0.0)  # a seed left out by --seeds
    (large / "rows" / "paper_seed0_6000.json").write_text("{}")  # other variants are ignored
    png = tmp_path / "budget.png"
    argv = [sys.executable, str(BENCHMARKS / "pretrain_budget.py"), str(small), str(large), "--seeds", "0", "1",
            "--out", str(png)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "conv: pretrained - random init, mean over shared seeds: +0.050 at 600 updates, +0.100 at 6,000" in (
        proc.stdout
    )
    assert "proj: pretrained - random init, mean over shared seeds: +0.070 at 600 updates, +0.180 at 6,000" in (
        proc.stdout
    )
    assert "| default | 6,000 | 2 |" in proc.stdout and png.stat().st_size > 5000

    empty = subprocess.run([sys.executable, str(BENCHMARKS / "pretrain_budget.py"), str(tmp_path / "none")],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert empty.returncode != 0 and "run collapse_study.py first" in empty.stderr


def test_downstream_verdicts_name_the_reference_ratio_only_when_it_was_run() -> None:
    _verdicts = _downstream()._verdicts

    def rows(final: float, speed: float) -> list[dict[str, float]]:
        return [{"final_return": final, "agent_steps_per_s": speed, "env_steps": 9_000.0}]

    by_config = {"state": rows(300.0, 120.0), "embedding": rows(150.0, 96.0),
                 "embedding, random init": rows(100.0, 96.0)}  # fmt: skip
    lines = _verdicts(by_config)
    assert lines == [
        "- embedding / state final return: 0.50 (target >= 0.5); embedding - random init: +50.0 (target > 0)",
        "- agent steps/s: embedding / state 0.80x (target >= 0.8x)",
    ]
    shifted = [{"seed": s, "final_return": 100.0 + s, "auc_return": 50.0, "agent_steps_per_s": 90.0} for s in (1, 2, 3)]
    by_seed = [{"seed": s, "final_return": f, "agent_steps_per_s": 96.0, "auc_return": 40.0}
               for s, f in ((0, 900.0), (1, 150.0), (2, 150.0))]  # fmt: skip
    compared = _verdicts({**by_config, "embedding": by_seed, "embedding, encode-time shift": shifted})
    assert compared[-1] == "- encode-time shift - embedding (seeds 1, 2): final return -48.5, AUC +10.0"
    with_reference = _verdicts({**by_config, "reference": rows(20.0, 8.0)})
    assert with_reference[1].endswith("embedding / reference 12.0x (target >= 15x)")
    assert with_reference[2] == "- reference mode final return 20.0 after 9000 env steps in the same training wall time"


def test_downstream_encode_time_shift_moves_training_frames_reproducibly() -> None:
    import numpy as np

    from sb3_crptpro import make_dmc_vec_env

    _ShiftFrames = _downstream()._ShiftFrames
    env = {"image_size": 32, "render": "fast", "action_repeat": 100}  # 10-step episodes
    plain, *shifted = (make_dmc_vec_env("cartpole_swingup", 1, seed=0, **env) for _ in range(3))
    shifted = [_ShiftFrames(shifted[0], pad=4, seed=1), _ShiftFrames(shifted[1], pad=4, seed=1)]
    frames = [[v.reset()] for v in (plain, *shifted)]
    terminals = [[], [], []]
    for _ in range(12):  # crosses the episode end
        for v, f, t in zip((plain, *shifted), frames, terminals, strict=True):
            obs, _, _, infos = v.step(np.zeros((1, 1), np.float32))
            f.append(obs)
            t += [i["terminal_observation"] for i in infos if "terminal_observation" in i]
    p, a, b = (np.stack(f) for f in frames)
    assert p.shape == a.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)  # same seed, same shifts
    moved = [not np.array_equal(x, y) for x, y in zip(p, a, strict=True)]
    assert sum(moved) >= 10  # a zero shift (1 in 81) may leave a frame in place
    # a shift by at most 4 pixels: the shifted frame's centre is in the original, 4 pixels around
    assert all(any(np.array_equal(y[0, :, 8:24, 8:24], x[0, :, 8 + dy : 24 + dy, 8 + dx : 24 + dx])
                   for dy in range(-4, 5) for dx in range(-4, 5)) for x, y in zip(p, a, strict=True))  # fmt: skip
    assert len(terminals[0]) == len(terminals[1]) == 1 and terminals[1][0].shape == terminals[0][0].shape
    assert not np.array_equal(terminals[0][0], terminals[1][0])  # terminal frames are shifted too
    for v in (plain, *shifted):
        v.close()


def test_embedding_throughput_reports_ratios_to_each_state_anchor(tiny_artifact: Path) -> None:
    configs = ["state", "state, fused Adam", "embedding, overlapped", "embedding, overlapped, SB3 Adam"]
    argv = [sys.executable, str(BENCHMARKS / "embedding_throughput.py"), "--encoder", str(tiny_artifact), "--task",
            "cartpole_swingup", "--action-repeat", "8", "--steps", "12", "--learning-starts", "8", "--repeats", "1",
            "--net-arch", "16", "--configs", *configs]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in configs:
        assert re.search(rf"^median +{re.escape(name)}: +\d+\.\d agent steps/s", proc.stdout, re.MULTILINE)
    for name in configs[2:]:  # no reference run: no ratio to it; one ratio per state anchor
        (line,) = [x for x in proc.stdout.splitlines() if x.startswith(f"{name}: ")]
        assert "reference" not in line
        assert re.search(r"x state SAC \(target >= 0\.8x; within each repeat \d+\.\d\dx, median", line)
        assert re.search(r"x state SAC, fused Adam \(target", line)


def test_six_task_benchmark_counts_updates_resumes_and_reports(tiny_data: Path, tiny_artifact: Path,
                                                               tmp_path: Path) -> None:  # fmt: skip
    from sb3_crptpro import load_artifact
    from sb3_crptpro.data import CrossDomainDataset
    from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer

    random_init = Pretrainer(PretrainConfig(num_protos=16, progress=False), CrossDomainDataset(tiny_data)).save(
        tmp_path / "random_init.safetensors", {"updates": 0, "diagnostics": {}}
    )
    out = tmp_path / "six"
    configs = ["state SAC", "embedding", "embedding, random init", "embedding, previous encoder",
               "embedding, plain critic", "UTD 2", "conv features + pre_fc", "projection + conv features",
               "state SAC, action repeat 1"]  # fmt: skip
    argv = [sys.executable, str(BENCHMARKS / "six_task.py"), "--out", str(out), "--encoder", str(tiny_artifact),
            "--previous-encoder", str(tiny_artifact), "--tasks", "cartpole_swingup", "--configs", *configs,
            "--seeds", "0", "--env-steps", "800", "--eval-every", "400", "--eval-episodes", "1",
            "--learning-starts", "50"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len([x for x in proc.stdout.splitlines() if "cartpole_swingup seed 0" in x]) == len(configs)
    rows = {r["config"]: r for r in map(json.loads, (p.read_text() for p in (out / "runs").glob("*.json")))}
    assert set(rows) == set(configs)
    # action repeat 8: 100 agent steps, learning from step 51 on: one gradient step per agent step, two with UTD 2;
    # action repeat 1: 800 agent steps, the same env-step budget
    assert {k: r["gradient_steps"] for k, r in rows.items()} == {**dict.fromkeys(configs, 50), "UTD 2": 100,
                                                                  "state SAC, action repeat 1": 750}  # fmt: skip
    assert rows["state SAC, action repeat 1"]["action_repeat"] == 1
    # float kernels differ per CPU type (docs page Pretrained encoders): each run records where it ran
    assert all(re.fullmatch(r"torch \S+ on cpu \(CPU kernels \w+, \w+\)", r["platform"]) for r in rows.values())
    assert all([p["env_steps"] for p in r["curve"]] == [400, 800] for r in rows.values())
    # without --random-init: the encoder's pretrainer before its first update, rebuilt from the recorded seed
    derived = load_artifact(out / "random_init.safetensors").metadata
    assert derived["tensor_sha256"] == load_artifact(random_init).metadata["tensor_sha256"]
    assert rows["embedding, random init"]["encoder"] == str(out / "random_init.safetensors")
    assert rows["embedding"]["spec"]["intrinsic_coef"] == 0.2 and rows["state SAC"]["spec"]["observation"] == "state"
    # the shipped learner (LayerNorm in the critic) and the study's base (plain critic), which every variant changes
    layer_norm = {name: r["spec"]["critic_layer_norm"] for name, r in rows.items()}
    assert layer_norm == {**dict.fromkeys(configs, False), "embedding": True, "embedding, random init": True,
                          "embedding, previous encoder": True}  # fmt: skip
    # conv features (32 x 9 x 9 at 24 px, float32) are stored instead of 128-d projections
    assert rows["conv features + pre_fc"]["bytes_per_transition"] > 4 * rows["embedding"]["bytes_per_transition"]
    report = (out / "report.md").read_text()
    assert "| CURL at 100k, CURL (ICML 2020) Table 1 | 582 |" in report
    assert "| state SAC at 100k, DrQ (ICLR 2021) Table 1 | 812 |" in report
    assert f"- embedding, plain critic: `{tiny_artifact}`" in report  # the encoder each config's runs recorded
    assert f"- embedding, random init: `{out / 'random_init.safetensors'}`" in report
    final = {name: r["final_return"] for name, r in rows.items()}
    study = {  # study rows: the learner variants against the plain-critic base, the default encoder against the
        "UTD 2": final["UTD 2"] - final["embedding, plain critic"],  # previous one, on the same seed
        "embedding, previous encoder (LayerNorm critic: the study's winner, the default)":
            final["embedding, previous encoder"] - final["embedding, plain critic"],
        "embedding (the default encoder against the previous one)":
            final["embedding"] - final["embedding, previous encoder"],
    }  # fmt: skip
    for label, diff in study.items():
        assert f"| {label} | 1 | {diff:+.1f} | cartpole_swingup s0 " in report
    state_diff = rows["state SAC, action repeat 1"]["final_return"] - rows["state SAC"]["final_return"]
    assert f"| state SAC, action repeat 1 | 1 | {state_diff:+.1f} |" in report  # against state SAC, not embedding
    assert (out / "six_task.png").stat().st_size > 10_000
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)  # resumes: every run is done
    assert again.returncode == 0 and "seed 0" not in again.stdout and "report:" in again.stdout


def test_pretrain_scale_reads_several_configs_of_one_learner_by_encoder(tiny_artifact: Path, tmp_path: Path) -> None:
    from sb3_crptpro import load_artifact

    pretrain_scale = _benchmark("pretrain_scale")
    runs = tmp_path / "six" / "runs"
    runs.mkdir(parents=True)
    records = [
        ("embedding", 0, 300.0),
        ("embedding, previous encoder", 1, 100.0),
        ("embedding, plain critic", 2, 555.0),  # another learner: not read
        ("embedding, random init", 0, 50.0),  # the first config's random init
        ("embedding, previous encoder, random init", 1, 60.0),
    ]  # not a config's random init: not read
    for i, (config, seed, value) in enumerate(records):
        run = {"config": config, "task": "cartpole_swingup", "seed": seed, "final_return": value,
               "encoder": str(tiny_artifact)}  # fmt: skip
        (runs / f"{i}.json").write_text(json.dumps(run))
    rows = {"tiny": {"tensor_sha256": load_artifact(tiny_artifact).metadata["tensor_sha256"]}}
    got = pretrain_scale.downstream(
        [tmp_path / "six"], rows, tmp_path / "out", ("embedding", "embedding, previous encoder")
    )
    assert got == {"tiny": {"cartpole_swingup": {0: 300.0, 1: 100.0}},
                   pretrain_scale.RANDOM_INIT: {"cartpole_swingup": {0: 50.0}}}  # fmt: skip


def _six_task():
    return _benchmark("six_task")


def test_six_task_published_rows_and_targets() -> None:
    six_task = _six_task()
    assert six_task.published("DrQ", "DrQ (ICLR 2021) Table 1")["ball_in_cup_catch"] == 913
    assert six_task.published("state SAC", "CURL (ICML 2020) Table 1", 500_000)["cheetah_run"] == 795
    # CURL Table 1's other 100k rows, with the six-task means the papers' readers compare (SAC+AE 396, Dreamer 290)
    sac_ae = six_task.published("SAC+AE", "CURL (ICML 2020) Table 1")
    assert round(six_task.six_task_mean(sac_ae)) == 396
    assert round(six_task.six_task_mean(six_task.published("Dreamer", "CURL (ICML 2020) Table 1"))) == 290
    assert six_task.published("Pixel SAC", "CURL (ICML 2020) Table 1")["cartpole_swingup"] == 419
    assert math.isnan(six_task.six_task_mean({k: v for k, v in sac_ae.items() if k != "walker_walk"}))

    def row(config: str, task: str, value: float) -> dict:
        return {"config": config, "task": task, "seed": 0, "final_return": value, "total_s": 60.0}

    rows = [row("state SAC", "cheetah_run", 300.0), row("embedding", "cheetah_run", 250.0),
            row("embedding, random init", "cheetah_run", 260.0), row("state SAC", "walker_walk", 500.0),
            row("embedding, plain critic", "cheetah_run", 200.0), row("embedding, plain critic", "walker_walk", 90.0),
            row("embedding, plain critic, random init", "cheetah_run", 150.0),
            row("embedding, previous encoder", "cheetah_run", 240.0),
            row("embedding, previous encoder", "walker_walk", 100.0)]  # fmt: skip
    lines = six_task.targets(rows)
    assert lines[0].startswith("- our state SAC within or above the published state-SAC range: 1 of 2 tasks")
    assert "(cheetah_run)" in lines[0]  # 300 >= 228 (DrQ table); walker 500 < 604
    assert lines[1].startswith("- embedding >= 0.8x our state SAC: 1 of 1")  # 250 >= 240
    assert lines[2].startswith("- embedding above the random-init encoder: 0 of 1")
    # each comparison counts only the tasks both configs ran (walker_walk has no embedding row)
    assert lines[3] == "- embedding above the previous encoder: 1 of 1 tasks measured (cheetah_run)"  # 250 > 240
    assert lines[4].startswith("- embedding, previous encoder above the random-init encoder: 0 of 1")  # 240 < 260
    # the plain critic against its own random-init twin, on the one task both ran
    assert lines[5] == "- embedding, plain critic above its random-init encoder: 1 of 1 tasks measured (cheetah_run)"
    assert lines[6].startswith("- embedding at or above CURL (100k): 0 of 1")  # CURL 299
    assert (
        six_task.verdict(rows)
        == "embedding mode, pretrained: at or above CURL on 0 of 1 tasks run; median 83% of our state SAC"
    )
    # on all six tasks the verdict adds the six-task mean next to the published ones
    curl = six_task.published("CURL", "CURL (ICML 2020) Table 1")
    every = [row("embedding", t, v - 1.0 if t == "finger_spin" else v) for t, v in curl.items()]
    assert six_task.verdict(every) == (
        "embedding mode, pretrained: at or above CURL on 5 of 6 tasks run; six-task mean 560 (published: SAC+AE "
        "396, CURL 560)"
    )


def test_six_task_study_compares_each_variant_with_its_own_base() -> None:
    six_task = _six_task()
    rows = [{"config": c, "task": "reacher_easy", "seed": sd, "final_return": v}
            for c, sd, v in [("embedding", 0, 300.0), ("embedding", 1, 100.0), ("embedding, plain critic", 0, 250.0),
                             ("embedding, intrinsic 0", 0, 280.0), ("embedding, intrinsic 0", 1, 160.0),
                             ("intrinsic 0", 0, 200.0), ("embedding, previous encoder", 0, 260.0),
                             ("embedding, previous encoder, intrinsic 0", 0, 270.0),
                             ("embedding, intrinsic 0.1", 1, 130.0)]]  # fmt: skip
    lines = {x.split(" | ")[0][2:]: x for x in six_task.study(rows)[2:]}
    # the default's own variant against the default (LayerNorm critic, intrinsic 0.2), on both seeds
    assert lines["embedding, intrinsic 0"] == (
        "| embedding, intrinsic 0 | 2 | +20.0 | reacher_easy s0 -20, reacher_easy s1 +60 |"
    )
    # the study's variant of the same name against the study's base (plain critic), on the one seed it has
    assert lines["intrinsic 0"] == "| intrinsic 0 | 1 | -50.0 | reacher_easy s0 -50 |"
    # half the coefficient, also against the default
    assert lines["embedding, intrinsic 0.1"] == "| embedding, intrinsic 0.1 | 1 | +30.0 | reacher_easy s1 +30 |"
    # the default encoder against the previous one, the previous one against the plain-critic base, and the previous
    # encoder's own intrinsic-0 run against it
    assert lines["embedding (the default encoder against the previous one)"].endswith(
        " | 1 | +40.0 | reacher_easy s0 +40 |"
    )
    label = "embedding, previous encoder (LayerNorm critic: the study's winner, the default)"
    assert lines[label] == f"| {label} | 1 | +10.0 | reacher_easy s0 +10 |"
    assert lines["embedding, previous encoder, intrinsic 0"].endswith(" | 1 | +10.0 | reacher_easy s0 +10 |")


def test_six_task_trunk_on_conv_features_learns_while_the_encoder_stays_frozen(tiny_artifact: Path,
                                                                             tmp_path: Path) -> None:  # fmt: skip
    import numpy as np
    from stable_baselines3 import SAC

    from sb3_crptpro import VecEncodeObservation, make_dmc_vec_env

    TrunkExtractor = _six_task().TrunkExtractor
    pixels = make_dmc_vec_env("cartpole_swingup", 2, seed=0, image_size=24, render="fast", action_repeat=50)
    venv = VecEncodeObservation(pixels, tiny_artifact, output="features")
    encoder_before = {k: v.clone() for k, v in venv.encoding.encoder.state_dict().items()}
    model = SAC("MlpPolicy", venv, seed=0, learning_starts=10, batch_size=8,
                policy_kwargs={"net_arch": [16], "features_extractor_class": TrunkExtractor,
                               "features_extractor_kwargs": {"features_dim": 12}})  # fmt: skip
    trunk = model.critic.features_extractor.trunk
    assert isinstance(trunk[0], torch.nn.Linear) and trunk[0].in_features == venv.observation_space.shape[0]
    critic_before = {k: v.clone() for k, v in trunk.state_dict().items()}
    actor_before = model.actor.features_extractor.trunk[0].weight.clone()
    model.learn(40)
    assert not torch.equal(trunk[0].weight, critic_before["0.weight"])  # the critic's trunk got gradients
    assert not torch.equal(model.actor.features_extractor.trunk[0].weight, actor_before)  # so did the actor's
    assert all(torch.equal(v, encoder_before[k]) for k, v in venv.encoding.encoder.state_dict().items())
    obs = venv.reset()
    with torch.no_grad():
        z = model.critic.features_extractor(torch.as_tensor(obs))
    assert z.shape == (2, 12) and z.abs().max() < 1  # tanh output
    model.save(tmp_path / "agent.zip")
    loaded = SAC.load(tmp_path / "agent.zip", env=venv)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    with pytest.raises(ValueError, match="1-D Box"):
        TrunkExtractor(venv.venv.observation_space)  # pixels
    venv.close()


def test_six_task_projection_plus_trunk_sees_embedding_modes_projection_and_trains_only_the_trunk(
    tiny_artifact: Path, tmp_path: Path
) -> None:
    import numpy as np
    from stable_baselines3 import SAC

    from sb3_crptpro import FrozenEncoding, VecEncodeObservation, make_dmc_vec_env

    six_task = _six_task()
    config = six_task.configs()["projection + conv features"]
    kwargs = six_task._policy_kwargs(config, [16], tiny_artifact)
    assert kwargs["features_extractor_kwargs"] == {"features_dim": 50, "projection_from": str(tiny_artifact)}
    kwargs["features_extractor_kwargs"]["features_dim"] = 12
    pixels = make_dmc_vec_env("cartpole_swingup", 2, seed=0, image_size=24, render="fast", action_repeat=50)
    venv = VecEncodeObservation(pixels, tiny_artifact, output="features")
    model = SAC("MlpPolicy", venv, seed=0, learning_starts=10, batch_size=8, policy_kwargs=kwargs)
    extractor = model.critic.features_extractor
    proj_dim = extractor.projector.linear.out_features
    assert extractor.features_dim == proj_dim + 12
    projector_before = {k: v.clone() for k, v in extractor.projector.state_dict().items()}
    trunk_before = extractor.trunk[0].weight.clone()
    model.learn(40)
    assert not torch.equal(extractor.trunk[0].weight, trunk_before)  # the trunk trains
    assert all(torch.equal(v, projector_before[k]) for k, v in extractor.projector.state_dict().items())  # frozen
    frames = pixels.reset()  # uint8 pixels; the policy sees their conv features
    obs = venv.encoding(frames)
    with torch.no_grad():
        both = extractor(torch.as_tensor(obs)).numpy()
    # the first proj_dim entries are what embedding mode's policy sees for the same frames
    np.testing.assert_allclose(both[:, :proj_dim], FrozenEncoding(tiny_artifact)(frames), rtol=1e-5, atol=1e-5)
    assert np.abs(both[:, proj_dim:]).max() < 1  # the trunk's tanh
    model.save(tmp_path / "agent.zip")
    loaded = SAC.load(tmp_path / "agent.zip", env=venv)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    venv.close()


def test_pretrain_scale_paired_difference_uses_the_shared_seeds_only() -> None:
    pretrain_scale = _benchmark("pretrain_scale")
    runs = {"a": {"t": {0: 10.0, 1: 30.0, 2: 99.0}}, "b": {"t": {0: 4.0, 1: 20.0, 3: 0.0}}}
    mean, se, n = pretrain_scale.paired_difference(runs, "a", "b", "t")  # diffs 6 and 10
    assert (mean, n) == (8.0, 2) and se == pytest.approx(2.0)  # stdev 2.83 / sqrt(2)
    assert pretrain_scale.paired_difference(runs, "a", "b", "other task") is None


def test_pretrain_scale_probes_each_encoder_once_and_reads_its_downstream_runs(tiny_data: Path, tiny_artifact: Path,
                                                                               tmp_path: Path) -> None:  # fmt: skip
    from sb3_crptpro import load_artifact
    from sb3_crptpro.pretraining.pretrainer import save_random_init

    random_init = save_random_init(tiny_artifact, tmp_path / "random_init.safetensors")
    runs = tmp_path / "six" / "runs"
    runs.mkdir(parents=True)
    import shutil

    artifact = shutil.copyfile(tiny_artifact, tmp_path / "encoder.safetensors")
    copy = shutil.copyfile(tiny_artifact, tmp_path / "copy.safetensors")  # the same encoder under another path
    base = "embedding, plain critic"  # the learner the scale study's runs used (the default --config)
    records = [(base, str(artifact), 0, 210.0), (base, str(copy), 1, 250.0),
               (base, str(tmp_path / "other.safetensors"), 0, 999.0),  # another encoder's run: not read
               ("embedding", str(artifact), 2, 777.0),  # another learner's run: not read
               (f"{base}, random init", str(random_init), 0, 180.0), ("state SAC", None, 0, 850.0)]  # fmt: skip
    for i, (config, encoder, seed, value) in enumerate(records):
        run = {
            "config": config,
            "task": "cartpole_swingup",
            "seed": seed,
            "final_return": value,
            "encoder": encoder,
            "auc_return": value - 10,
        }
        (runs / f"{i}.json").write_text(json.dumps(run))
    out = tmp_path / "scale"
    argv = [sys.executable, str(BENCHMARKS / "pretrain_scale.py"), "--out", str(out), "--work", str(tmp_path / "w"),
            "--encoder", f"tiny: 2 updates={artifact}", "--random-init", str(random_init),
            "--made", "tiny: 2 updates=two updates on tiny data", "--runs", str(tmp_path / "six"),
            "--probe-transitions", "500"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cached = sorted((out / "rows").glob("*.json"))
    assert len(cached) == 2  # one probe row per artifact, named by its tensor checksum
    row = json.loads((out / "rows" / f"{load_artifact(tiny_artifact).metadata['tensor_sha256'][:16]}.json").read_text())
    assert row["updates"] == 2 and row["image_size"] == 24 and -1.0 <= row["r2_conv_mean"] <= 1.0
    assert set(k for k in row if k.startswith("r2_conv/")) == {
        f"r2_conv/{t}" for t in ("cheetah_run", "walker_run", "reacher_easy", "cartpole_swingup", "finger_spin")
    }
    report = (out / "report.md").read_text()
    # the encoder's two seeds, matched by checksum (not the missing encoder's 999), random init, state SAC
    assert re.search(r"\| tiny: 2 updates \| 2 \| 24 \| 2 \| 8 \| .* \| 230\.0 \(s0 210\.0, s1 250\.0\) \|", report)
    assert re.search(r"\| random init \| - \| 24 \| 0 \| - \| .* \| 180\.0 \|", report)
    assert "| state SAC (upper anchor, not an encoder) | | | | | | | | 850.0 |" in report
    assert "- tiny: 2 updates: two updates on tiny data" in report and "999" not in report and "777" not in report
    curve_means = report.split("Mean return over each run's learning curve")[1]  # the second downstream table
    assert "| tiny: 2 updates | 220.0 (s0 200.0, s1 240.0) |" in curve_means and "| state SAC | 840.0 |" in curve_means
    # paired against the first encoder on the seeds both ran (random init: seed 0 only, so no standard error)
    assert "| random init | -30.0 +- nan (1) |" in report.split("Curve mean: each encoder minus")[0]
    assert "| random init | -30.0 +- nan (1) |" in curve_means.split("Curve mean: each encoder minus")[1]
    assert (out / "pretrain_scale.png").stat().st_size > 10_000
    probe_data = tmp_path / "w" / "probe_data_24px"
    stamp = {p: p.stat().st_mtime_ns for p in probe_data.rglob("manifest.json")}
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in probe_data.rglob("manifest.json")} == stamp  # cached rows: no probing
    # the encoder file deleted since: its cached row (recorded under that path) still reports it and matches its runs
    # (the copy's run by the copy's path, which only the run records: not matched once the copy is gone too)
    artifact.unlink()
    (out / "report.md").unlink()
    gone = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert gone.returncode == 0, gone.stderr[-3000:]
    assert re.search(r"\| tiny: 2 updates \| 2 \| 24 \| 2 \| 8 \| .* \| 230\.0 \(s0 210\.0, s1 250\.0\) \|",
                     (out / "report.md").read_text())  # fmt: skip
    copy.unlink()
    subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)
    assert re.search(r"\| tiny: 2 updates \| 2 \| 24 \| 2 \| 8 \| .* \| 210\.0 \|", (out / "report.md").read_text())
    never = [*argv, "--encoder", f"never probed={tmp_path / 'never.safetensors'}"]
    refused = subprocess.run(never, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "no probe row cached" in refused.stderr


#: anchor -> bytes per stored transition: about one 3x64x64 frame (SB3's buffer: six), or two float16 32x27x27 maps
_ANCHOR_BYTES = {"DrQ, 64 px fast": (12_288, 2 * 12_288),
                 "DrQ last layer, dmc-64px-invdyn": (2 * 2 * 32 * 27 * 27, 2 * 2 * 32 * 27 * 27 + 100)}  # fmt: skip


@pytest.mark.parametrize("anchor", list(_ANCHOR_BYTES))
def test_pixel_anchor_resumes_inside_a_run_and_writes_a_six_task_row(tmp_path: Path, anchor: str) -> None:
    out = tmp_path / "anchor"
    base = [sys.executable, str(BENCHMARKS / "pixel_anchor.py"), "--out", str(out), "--tasks", "cartpole_swingup",
            "--eval-every", "160", "--eval-episodes", "1", "--learning-starts", "10", "--batch-size", "8",
            "--checkpoint-every", "20", "--buffer-size", "40", "--anchors", anchor]  # fmt: skip
    first = subprocess.run([*base, "--env-steps", "160"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    row_file = next((out / "runs").glob("*.json"))
    row_file.unlink()  # the run is extended below from its checkpoint at agent step 20
    second = subprocess.run([*base, "--env-steps", "320"], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming at 20 agent steps" in second.stdout
    row = json.loads(row_file.read_text())
    assert row["config"] == anchor and row["action_repeat"] == 8
    assert row["gradient_steps"] == 30  # 40 agent steps, updates from step 11 on, across both processes
    assert [p["env_steps"] for p in row["curve"]] == [160, 320]
    low, high = _ANCHOR_BYTES[anchor]
    assert low <= row["bytes_per_transition"] < high
    if "last layer" in anchor:  # the trained last conv layer moved away from the encoder's
        from stable_baselines3.common.save_util import load_from_zip_file

        from sb3_crptpro import load_artifact

        _, params, _ = load_from_zip_file(next((out / "work").iterdir()) / "model.zip", device="cpu")
        trained = params["policy"]["critic.features_extractor.encoder.conv.weight"]
        start = load_artifact("dmc-64px-invdyn").encoder.convs[-2].weight
        assert trained.shape == start.shape and not torch.equal(trained, start)
        assert row["spec"]["trained"] == "last" and row["spec"]["map_pad"] == 2


def test_the_last_layer_on_early_maps_gives_the_encoder_features() -> None:
    """Partial fine-tuning splits the frozen encoder in two: maps stored as float16, the last layer trained on them."""
    anchor = _benchmark("pixel_anchor")
    from sb3_crptpro import load_artifact

    encoder = load_artifact("dmc-64px-invdyn").encoder
    pixels = torch.randint(0, 256, (3, 9, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        maps = anchor.EarlyLayers(encoder)(pixels)
        last = anchor.LastLayer(tuple(maps.shape[1:]), encoder.convs[-2].state_dict())
        features, expected = last(maps), encoder(pixels)
    assert maps.dtype == torch.float16 and maps.shape == (3, 32, 27, 27) and last.repr_dim == 20_000
    torch.testing.assert_close(features, expected, atol=2e-3, rtol=1e-2)  # float16 maps: ~3 significant digits


def test_state_probes_report_every_variable_for_each_feature_set(tmp_path: Path) -> None:
    out = tmp_path / "probes"
    argv = [sys.executable, str(BENCHMARKS / "state_probes.py"), "--out", str(out), "--tasks", "cartpole_swingup",
            "--records", "250", "--max-train", "120", "--max-test", "60", "--policy-env-steps", "400"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    assert [r["source"] for r in rows] == ["random policy", "state SAC policy"]
    labels = [fs.label for fs in _benchmark("state_probes").FEATURE_SETS]
    for row in rows:
        assert row["names"][4] == "pole angular velocity" and row["record_every"] == 4
        assert list(row["results"]) == labels  # cartpole: the pretraining gap (4) differs from the downstream (8)
        assert all(len(r["linear"]) == len(r["mlp"]) == 5 for r in row["results"].values())
        assert row["results"]["pretrained projection"]["dims"] == 128
        assert row["results"]["pretrained conv, 84 px paper"]["dims"] == 32 * 35 * 35  # the conv map at 84 px
        assert row["results"]["raw pixels"]["dims"] == 9 * 64 * 64
    report = (out / "report.md").read_text()
    assert "| pole angular velocity |" in report and "## cartpole_swingup, state SAC policy" in report
    assert (out / "state_probes.png").stat().st_size > 10_000
    # many short episodes: reacher's per-episode target is probed too, on the chosen feature sets only
    short = tmp_path / "short"
    argv = [sys.executable, str(BENCHMARKS / "state_probes.py"), "--out", str(short), "--tasks", "reacher_easy",
            "--sources", "random policy", "--episodes", "8", "--records", "160", "--max-train", "120", "--max-test",
            "40", "--features", "pretrained projection", "raw pixels"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [json.loads(p.read_text()) for p in (short / "runs").glob("*.json")]
    assert row["episodes"] == 8 and row["records"] == 160 and row["names"][:2] == ["to_target[0]", "to_target[1]"]
    assert list(row["results"]) == ["pretrained projection", "raw pixels"]
    assert all(len(r["linear"]) == 8 for r in row["results"].values())  # to_target, velocities, sin and cos angles
    assert "160 records from 8 episodes" in (short / "report.md").read_text()


def test_decoded_state_feeds_the_learner_the_decoded_state_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "decoded"
    argv = [sys.executable, str(BENCHMARKS / "decoded_state.py"), "--out", str(out), "--features", "pretrained conv",
            "--episodes", "4", "--env-steps", "2400", "--eval-every", "1200", "--eval-episodes", "1",
            "--policy-dir", str(tmp_path / "policies"), "--policy-env-steps", "400"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert row["names"] == ["cart position", "pole cos", "pole sin", "cart velocity", "pole angular velocity"]
    assert list(row["held_out_r2"]) == ["random policy", "state SAC policy"]
    assert all(len(r) == 5 and all(v <= 1 for v in r) for r in row["held_out_r2"].values())
    assert row["eval_env_steps"] == [1200, 2400] and len(row["curve"]) == 2
    assert 0 <= row["final_mean"] <= 1000
    report = (out / "report.md").read_text()
    assert "| pretrained conv | ridge | 4 | 0 |" in report
    assert "R^2 pole angular velocity (random / state SAC)" in report
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)  # every run on disk: nothing reruns
    assert again.returncode == 0 and "seed 0" not in again.stdout
    local = subprocess.run([*argv, "--locality"], capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr[-3000:]
    lines = (out / "locality_cartpole_swingup.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("| ")][1:]
    fitted = [line.split(" | ")[0].lstrip("| ") for line in table]
    assert fitted == ["state SAC policy"] * 2 + ["random policy"] * 2 + ["random policy + state SAC policy"] * 2


def test_the_replay_buffer_shifts_stored_float16_maps_as_numpy_edge_padding_does() -> None:
    """The feature-space shift of partial fine-tuning: each sampled map is a window of the stored one edge-padded."""
    import gymnasium as gym
    import numpy as np

    from sb3_crptpro.sb3.sac import AugmentedReplayBuffer

    space = gym.spaces.Box(0.0, np.inf, (2, 6, 6), np.float16)
    buffer = AugmentedReplayBuffer(4, space, gym.spaces.Box(-1, 1, (1,)), device="cpu", augment_pad=2, augment_seed=0)
    maps = np.random.default_rng(0).random((4, 2, 6, 6)).astype(np.float16)
    for i in range(4):
        buffer.add(maps[i][None], maps[(i + 1) % 4][None], np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    offsets = set()
    padded = np.pad(maps, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    for _ in range(10):
        samples = buffer.sample(4)
        for obs in samples.observations.numpy():
            assert obs.dtype == np.float16
            windows = [(i, dy, dx) for i in range(4) for dy in range(5) for dx in range(5)
                       if np.array_equal(obs, padded[i, :, dy:dy + 6, dx:dx + 6])]  # fmt: skip
            assert windows, "a sampled map is no shifted stored map"
            offsets.update((dy, dx) for _, dy, dx in windows)
    assert len(offsets) > 5  # the shift varies from sample to sample
