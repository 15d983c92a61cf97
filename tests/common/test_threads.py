"""Torch thread counts per kind of work (sb3_crptpro.common.threads): one thread for per-frame work, the free cores
for batched updates, and a user's choice left alone, checked on real DMC envs and a real SB3 SAC."""

import pytest
import torch
from stable_baselines3 import SAC

from sb3_crptpro.common import threads
from sb3_crptpro.common.threads import (
    batch_thread_count,
    batch_threads,
    frame_threads,
    free_cores,
    pinned_batch_threads,
    torch_default_threads,
    torch_threads,
    user_chose_threads,
)


@pytest.fixture
def default_threads(monkeypatch):
    """torch at its default thread count, no OMP_NUM_THREADS: the state a new user's process starts in."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(torch_default_threads())
    yield torch_default_threads()
    torch.set_num_threads(before)


def test_torch_default_is_what_torch_picks():
    # the test process sets no thread count before this (pytest-xdist is not used here)
    assert torch_default_threads() >= 1
    assert torch.get_num_threads() == torch_default_threads() or user_chose_threads()


def test_frame_threads_sets_one_and_restores(default_threads):
    with frame_threads() as inside:
        assert inside == torch.get_num_threads() == 1
        with batch_threads() as batched:  # nested: the inner count, then the outer one again
            assert torch.get_num_threads() == batched == batch_thread_count()
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == default_threads


def test_free_cores_is_within_the_machine(default_threads):
    assert 1 <= free_cores() <= default_threads
    with batch_threads(reserved=default_threads) as count:
        assert count == 1


def test_explicit_set_num_threads_is_respected(default_threads):
    mine = default_threads + 1
    torch.set_num_threads(mine)
    assert user_chose_threads()
    with frame_threads() as inside, batch_threads() as batched:
        assert inside == batched == torch.get_num_threads() == mine
    assert torch.get_num_threads() == mine


def test_omp_num_threads_is_respected(default_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", str(default_threads))
    with frame_threads() as inside:
        assert inside == torch.get_num_threads() == default_threads


def test_the_batched_count_does_not_follow_the_load(default_threads, monkeypatch):
    """The count changes the float results of an update, so it is decided once: at a process's first batched work,
    or pinned for a run."""
    monkeypatch.setattr(threads, "_process_batch_count", None)
    monkeypatch.setattr(threads, "free_cores", lambda: 1)
    assert batch_thread_count() == 1
    monkeypatch.setattr(threads, "free_cores", lambda: default_threads)  # the load changes: the count does not
    with batch_threads() as batched:
        assert batched == 1
    with pinned_batch_threads() as pinned:  # a run starting now: the free cores now
        assert pinned == batch_thread_count() == default_threads
        with pinned_batch_threads(1), batch_threads() as inner:  # a resumed run's recorded count
            assert inner == torch.get_num_threads() == 1
        assert batch_thread_count() == default_threads
    assert batch_thread_count() == 1


def test_pinned_count_is_the_users_when_the_user_chose(default_threads, monkeypatch):
    monkeypatch.setattr(threads, "free_cores", lambda: 1)
    torch.set_num_threads(default_threads + 1)
    with pinned_batch_threads() as pinned:
        assert pinned == default_threads + 1


def test_a_pinned_count_wins_over_the_users(default_threads, monkeypatch):
    """A run's pinned count (``train --threads N``, a resumed run's recorded count) runs its batched work whatever
    thread count the process was left at, and the user's count is back afterwards; unpinned work keeps the user's."""
    users = default_threads + 1
    torch.set_num_threads(users)
    with pinned_batch_threads(1), batch_threads() as batched:
        assert batched == torch.get_num_threads() == 1
        with frame_threads() as inside:  # per-frame work inside it: one thread, as in a fresh process
            assert inside == torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == users
    with batch_threads() as batched:
        assert batched == torch.get_num_threads() == users
    monkeypatch.setenv("OMP_NUM_THREADS", str(users))
    with pinned_batch_threads(1), batch_threads() as batched:
        assert batched == torch.get_num_threads() == 1


def test_rejects_zero_threads():
    with pytest.raises(ValueError, match="count must be >= 1"), torch_threads(0):
        pass
    with pytest.raises(ValueError, match="count must be >= 1"), pinned_batch_threads(0):
        pass


def _record_threads(module, seen):
    module.register_forward_hook(lambda mod, args, out: seen.append((len(args[0]), torch.get_num_threads())))


def test_env_encoder_runs_on_one_thread(default_threads):
    from sb3_crptpro import (
        PrototypeIntrinsicReward,
        VecEncodeObservation,
        env_settings,
        load_artifact,
        make_dmc_vec_env,
    )

    artifact = load_artifact("dmc-64px")
    pixels = make_dmc_vec_env("cartpole_swingup", 2, seed=0, **env_settings(artifact.metadata, action_repeat=8))
    venv = PrototypeIntrinsicReward(VecEncodeObservation(pixels, artifact))
    seen: list[tuple[int, int]] = []
    _record_threads(venv.venv.encoding.encoder, seen)
    venv.reset()
    venv.step(torch.zeros(2, 1).numpy())
    venv.close()
    assert [threads for _, threads in seen] == [1, 1]
    assert torch.get_num_threads() == default_threads


def test_sac_rollout_on_one_thread_updates_on_free_cores(default_threads):
    """UpdateThreadsCallback in a real SAC learn: the actor's forward on one observation (rollout) on 1 thread, the
    critic's forward on a batch (gradient step) on the free cores; the count is restored after learn."""
    from sb3_crptpro import VecEncodeObservation, env_settings, load_artifact, make_dmc_vec_env
    from sb3_crptpro.sb3.threads import UpdateThreadsCallback

    artifact = load_artifact("dmc-64px")
    pixels = make_dmc_vec_env("cartpole_swingup", 1, seed=0, **env_settings(artifact.metadata, action_repeat=8))
    model = SAC("MlpPolicy", VecEncodeObservation(pixels, artifact), batch_size=32, learning_starts=20,
                buffer_size=200, policy_kwargs={"net_arch": [32, 32]}, seed=0)  # fmt: skip
    actor, critic = [], []
    _record_threads(model.actor, actor)
    _record_threads(model.critic, critic)
    model.learn(40, callback=UpdateThreadsCallback())
    model.get_env().close()
    rollout = {threads for batch, threads in actor if batch == 1}
    assert rollout == {1}
    assert {threads for _, threads in critic} <= set(range(1, default_threads + 1)) and critic
    assert torch.get_num_threads() == default_threads


def test_a_context_closed_out_of_order_leaves_the_count_to_the_inner_one(default_threads):
    """A context left open (a ``learn`` that raised) and closed later, out of order, by the garbage collector must
    neither change the count of the context open inside it nor take its entry: the inner one restores the count the
    outer one found."""
    outer, inner = torch_threads(1), torch_threads(default_threads + 1)
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert torch.get_num_threads() == default_threads + 1 and not user_chose_threads()
    inner.__exit__(None, None, None)
    assert torch.get_num_threads() == default_threads and not user_chose_threads()
    assert threads._set_by_us == []


def test_an_interrupted_learn_restores_the_count_when_the_callback_is_closed(default_threads):
    """SB3 ends a ``learn`` that raised without ``_on_training_end``: the phase's context stays open (torch left on
    1 thread, a user's choice misread) until :meth:`UpdateThreadsCallback.close`, which ``train`` calls on its way
    out. Real SAC on Gymnasium's Pendulum, interrupted in its first gradient step."""
    import contextlib

    import gymnasium as gym

    from sb3_crptpro.sb3.threads import UpdateThreadsCallback

    model = SAC("MlpPolicy", gym.make("Pendulum-v1"), learning_starts=10, batch_size=8, seed=0,
                policy_kwargs={"net_arch": [16]})  # fmt: skip

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    model.train = interrupted
    callback = UpdateThreadsCallback()
    with pytest.raises(KeyboardInterrupt), contextlib.closing(callback):
        model.learn(40, callback=callback)
    assert torch.get_num_threads() == default_threads and threads._set_by_us == []
    assert not user_chose_threads()
