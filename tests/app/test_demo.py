"""The demo's computed conclusion (the demo itself runs end to end in tests/test_end_to_end.py)."""

from __future__ import annotations

import pytest

from sb3_crptpro.app.demo import compare_encoders


@pytest.mark.parametrize(
    ("pretrained", "random_init", "start"),
    [
        ([300.0, 320.0], [100.0, 110.0], "pretrained ahead on all 2 seeds by +205.0"),
        ([100.0, 110.0], [300.0, 320.0], "random init ahead on all 2 seeds by 205.0"),
        ([300.0, 100.0], [200.0, 150.0], "no conclusion: pretrained ahead on 1 of 2 seeds"),
        (
            [300.0, 100.0],
            [90.0, 80.0],
            "no conclusion: pretrained ahead on 2 of 2 seeds, mean difference +115.0 "
            "against a seed-to-seed range of 200.0",
        ),
        ([5.0], [1.0], "pretrained ahead on its 1 seed by +4.0"),  # one seed: no range, any gap counts
    ],
)
def test_conclusion_follows_the_numbers(pretrained: list[float], random_init: list[float], start: str) -> None:
    assert compare_encoders(pretrained, random_init).startswith(start)


def test_conclusion_needs_paired_seeds() -> None:
    with pytest.raises(ValueError, match="one return per seed"):
        compare_encoders([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="one return per seed"):
        compare_encoders([], [])


def test_comparison_figure_with_runs_shorter_than_an_episode(tmp_path) -> None:
    """The CI demo trains 75 agent steps, less than one 250-step episode: no training curve, the evaluations drawn."""
    import yaml
    from PIL import Image

    from sb3_crptpro.app.report import plot_encoder_comparison

    runs = {}
    for label in ("pretrained encoder", "random-init encoder"):
        run = tmp_path / label.replace(" ", "_")
        run.mkdir()
        (run / "config.yml").write_text(yaml.safe_dump({"train": {"steps": 75}, "env": {"action_repeat": 4}}))
        (run / "0.monitor.csv").write_text('#{"t_start": 0, "env_id": "walker_walk"}\nr,l,t\n')  # no episode yet
        runs[label] = [run]
    out = plot_encoder_comparison({"walker_walk": runs}, tmp_path / "curves.png",
                                  final_returns={"walker_walk": {"pretrained encoder": [3.0]}},
                                  random_returns={"walker_walk": 1.0})  # fmt: skip
    width, height = Image.open(out).size
    assert width > 300 and height > 150
