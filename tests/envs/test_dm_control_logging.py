"""dm_control through the package: what it logs."""


def test_cheetah_logs_no_settotalmass_deprecation(caplog) -> None:
    """MuJoCo's deprecation of dm_control's own cheetah XML (twice per env through absl) is not shown to users."""
    import logging

    from sb3_crptpro import make_dmc_env

    with caplog.at_level(logging.WARNING):
        env = make_dmc_env("cheetah_run", image_size=24, render="fast", seed=0)
        env.reset()
        env.close()
    assert "settotalmass" not in caplog.text
