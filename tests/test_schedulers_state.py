"""Scheduler state: plain data, exact resume, config changes, mismatches."""
import io

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mmengine.optim.scheduler import (CosineAnnealingLR, ExponentialLR,
                                      MultiStepLR)
from mmengine.optim.scheduler import LinearLR as MMEngineLinearLR

import mmlr.schedulers.base as base
from mmlr.schedulers import LinearDecayLR, LinearLR, LinearLrInterval, ReduceLR
from test_schedulers_linear import lrs_over, sgd

PLAIN = (int, float, str, bool, type(None))


def assert_plain(value):
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain(v)
    else:
        assert isinstance(value, PLAIN), type(value)


def roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def make(kind: str, o):
    return {
        'linear': lambda: LinearLR(o, start_factor=0.0, end=7),
        'decay': lambda: LinearDecayLR(o, begin=2, end=9),
        'interval': lambda: LinearLrInterval(o, interval=3, begin=1, end=12),
        'reduce': lambda: ReduceLR(o, monitor='train/loss', patience=0,
                                   factor=0.5, by_epoch=False),
    }[kind]()


@pytest.mark.parametrize('kind', ['linear', 'decay', 'interval', 'reduce'])
def test_state_is_progress_only_plain_data_loading_weights_only(kind):
    o = sgd(0.1, 0.01)
    s = make(kind, o)
    for _ in range(3):
        o.step()
        s.step()
    state = s.state_dict()
    assert_plain(state)
    assert roundtrip(state) == state
    assert 'optimizer' not in state
    # settings are kept apart, for comparison only
    assert set(state) - set(s.progress_keys) == {'type', 'settings'}


def refused(kinds: list[str]) -> bool:
    """README's rule for these kinds: 'linear' starts at factor 0 at step 0,
    and of the others only 'mm-linear' changes the lr at step 0, so a
    'linear' listed after an 'mm-linear' that no earlier 'linear' holds at 0
    is refused."""
    for i, kind in enumerate(kinds):
        if kind == 'mm-linear' and 'linear' not in kinds[:i]:
            return 'linear' in kinds[i + 1:]
    return False


@settings(max_examples=25)
@given(
    kinds=st.lists(st.sampled_from(['linear', 'decay', 'interval', 'mm-linear',
                                    'mm-multistep', 'mm-exp', 'mm-cos']),
                   min_size=1, max_size=4),
    stop=st.integers(min_value=0, max_value=20),
)
@example(kinds=['mm-linear', 'linear'], stop=0)  # refused
@example(kinds=['linear', 'mm-linear', 'linear'], stop=3)  # not refused
def test_random_chains_resume_exactly_and_keep_group_ratios(kinds, stop):
    """Property: for any chain of mmlr and mmengine schedulers, values stay
    finite and >= 0, groups keep their ratio, and saving at a random step and
    loading into fresh schedulers reproduces the rest of the sequence."""

    def chain(o):
        built = []
        for kind in kinds:
            if kind == 'mm-linear':
                built.append(MMEngineLinearLR(o, start_factor=0.2, end=6))
            elif kind == 'mm-multistep':
                built.append(MultiStepLR(o, milestones=[4, 9], gamma=0.3))
            elif kind == 'mm-exp':
                built.append(ExponentialLR(o, gamma=0.9, begin=3, end=15))
            elif kind == 'mm-cos':
                built.append(CosineAnnealingLR(o, T_max=10, begin=5, end=15))
            else:
                built.append(make(kind, o))
        return built

    o = sgd(0.1, 0.025)
    if refused(kinds):
        with pytest.raises(ValueError, match='would be lost'):
            chain(o)
        return
    schedulers = chain(o)
    values = []
    for step in range(25):
        values.append([g['lr'] for g in o.param_groups])
        if step == stop:
            saved = [roundtrip(s.state_dict()) for s in schedulers]
            saved_optimizer = roundtrip(o.state_dict())
        o.step()
        for s in schedulers:
            s.step()
    for head, stem in values:
        assert head >= 0 and stem >= 0
        assert stem == pytest.approx(head * 0.25, rel=1e-9, abs=1e-15)

    # resume: a fresh optimizer and schedulers, then the checkpoint
    o2 = sgd(0.1, 0.025)
    fresh = chain(o2)
    o2.load_state_dict(saved_optimizer)
    for s, state in zip(fresh, saved):
        s.load_state_dict(state)
    resumed = []
    for _ in range(stop + 1, 25):
        o2.step()
        for s in fresh:
            s.step()
        resumed.append([g['lr'] for g in o2.param_groups])
    flat = [lr for pair in resumed for lr in pair]
    assert flat == pytest.approx([lr for pair in values[stop + 1:]
                                  for lr in pair], rel=1e-12, abs=1e-15)


def test_resume_with_a_longer_schedule_follows_the_new_config(monkeypatch):
    logged = []
    monkeypatch.setattr(base, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    # 2 epochs of a decay to 0 planned over end=4; resumed with end=8
    o = sgd(0.1)
    s = LinearDecayLR(o, end=4)
    lrs_over(o, [s], 2)
    state, opt_state = s.state_dict(), o.state_dict()

    o2 = sgd(0.1)
    s2 = LinearDecayLR(o2, end=8)
    o2.load_state_dict(opt_state)
    s2.load_state_dict(state)
    # new ramp: 0.1 * (1 - t / 7) for t = 2, 3, ...
    assert lrs_over(o2, [s2], 4) == pytest.approx(
        [0.1 * (1 - 2 / 3)] + [0.1 * (1 - t / 7) for t in (3, 4, 5)])
    assert len(logged) == 1 and 'end 4 -> 8' in logged[0]


def test_a_state_from_another_scheduler_is_refused():
    o = sgd(0.1)
    mm_state = MMEngineLinearLR(o, start_factor=0.5, end=3).state_dict()
    with pytest.raises(ValueError, match='param_scheduler in the config'):
        LinearLR(sgd(0.1), end=3).load_state_dict(mm_state)
    decay_state = LinearDecayLR(sgd(0.1), end=3).state_dict()
    with pytest.raises(ValueError, match='LinearDecayLR where the config '
                       'has mmlr LinearLR'):
        LinearLR(sgd(0.1), end=3).load_state_dict(decay_state)


def test_plain_turns_numpy_and_torch_scalars_into_python_numbers():
    import numpy as np
    state = base.plain({'a': np.float64(1.5), 'b': torch.tensor(2),
                        'c': (np.int64(3), [np.float32(0.5)])})
    assert state == {'a': 1.5, 'b': 2, 'c': [3, [0.5]]}
    assert type(state['b']) is int and type(state['c'][0]) is int
    assert_plain(state)
    with pytest.raises(TypeError, match='cannot store'):
        base.plain({'x': object()})



def test_a_single_ramps_state_from_mmlr_0_1_resumes_exactly():
    # mmlr 0.1 saved the value beneath a ramp's own factor as '_underlying';
    # with one ramp that is the value beneath all ramps. lr 0.1, warm-up from
    # 0 over 10 steps: after 4 steps the lr is 0.1 * 4 / 9, then 5/9, 6/9.
    o = sgd(0.1)
    warm = LinearLR(o, start_factor=0.0, end=10)
    for _ in range(4):
        o.step()
        warm.step()
    old = dict(warm.state_dict())
    old['_underlying'] = old.pop('_value_beneath')
    resumed_o = sgd(0.1)
    resumed = LinearLR(resumed_o, start_factor=0.0, end=10)
    resumed.load_state_dict(roundtrip(old))
    resumed_o.param_groups[0]['lr'] = o.param_groups[0]['lr']
    assert lrs_over(resumed_o, [resumed], 3)[1:] == pytest.approx(
        [0.1 * 5 / 9, 0.1 * 6 / 9], rel=1e-12)


def test_several_ramps_state_from_mmlr_0_1_is_refused():
    o = sgd(0.1)
    ramps = [LinearLR(o, start_factor=0.0, end=10),
             LinearDecayLR(o, end=20)]
    old = dict(ramps[0].state_dict())
    old['_underlying'] = old.pop('_value_beneath')
    with pytest.raises(ValueError, match='older mmlr whose ramps kept'):
        ramps[0].load_state_dict(old)
