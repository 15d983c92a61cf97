"""Warnings raised deep in the package name the user's line (sb3_crptpro.common.user_warning)."""

import warnings
from pathlib import Path

import pytest

from sb3_crptpro.common.user_warning import warn_user


def _from_here() -> None:
    warn_user("direct")


def test_a_direct_call_points_at_the_caller() -> None:
    with pytest.warns(UserWarning, match="direct") as caught:
        _from_here()
    assert caught[0].filename == __file__


def test_collapse_warning_of_a_python_fit_points_at_the_users_line(tiny_data: Path, monkeypatch) -> None:
    """Pretrainer.fit -> _fit -> warn_user: the warning shows this file's line, not the package's
    ``stats = trainer.fit(...)``."""
    from sb3_crptpro.data import CrossDomainDataset
    from sb3_crptpro.pretraining import pretrainer
    from sb3_crptpro.pretraining.pretrainer import CollapseWarning, PretrainConfig, Pretrainer

    monkeypatch.setattr(pretrainer, "collapse_warning", lambda *args, **kwargs: "collapsed (stand-in)")
    trainer = Pretrainer(PretrainConfig(updates=2, batch_size=8, num_protos=16, log_every=1, probe_frames=4,
                                        progress=False), CrossDomainDataset(tiny_data))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line_after()
        trainer.fit()
    collapse = [w for w in caught if issubclass(w.category, CollapseWarning)]
    assert len(collapse) == 1 and collapse[0].filename == __file__ and collapse[0].lineno == line


def _line_after() -> int:
    import inspect

    return inspect.currentframe().f_back.f_lineno + 1
