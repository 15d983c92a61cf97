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
