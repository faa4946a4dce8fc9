"""LinearLR, LinearDecayLR and LinearLrInterval: numbers, chaining, checks."""
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mmengine.optim import OptimWrapper
from mmengine.optim.scheduler import LinearLR as MMEngineLinearLR
from mmengine.optim.scheduler import (ConstantLR, CosineAnnealingLR,
                                      ExponentialLR, MultiStepLR, PolyLR,
                                      StepLR)
from mmengine.registry import PARAM_SCHEDULERS

import mmlr  # noqa: F401
from mmlr.schedulers import LinearDecayLR, LinearLR, LinearLrInterval


def sgd(*lrs: float, lr: float | None = None) -> torch.optim.SGD:
    """One param group per lr; ``lr`` (default: the first) is the
    optimizer's configured lr."""
    groups = [{'params': [torch.nn.Parameter(torch.zeros(1))], 'lr': x}
              for x in lrs]
    return torch.optim.SGD(groups, lr=lrs[0] if lr is None else lr)


def lrs_over(optimizer, schedulers, steps: int, group: int = 0) -> list:
    """The lr used at each step, as mmengine's Runner steps schedulers."""
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[group]['lr'])
        optimizer.step()
        for s in schedulers:
            s.step()
    return seen


def test_linear_lr_example_from_mmengine_docs():
    # base 0.05, start_factor 0.5, end 5: 0.05 * (0.5 + 0.5 * t / 4)
    o = sgd(0.05)
    assert lrs_over(o, [LinearLR(o, start_factor=0.5, end=5)], 7) == \
        pytest.approx([0.025, 0.03125, 0.0375, 0.04375, 0.05, 0.05, 0.05],
                      rel=1e-12)


@pytest.mark.parametrize('kwargs', [
    dict(start_factor=0.5, end=5),
    dict(start_factor=0.5, begin=2, end=7),
    dict(start_factor=1.0, end_factor=0.0, end=5),
    dict(start_factor=0.1, end_factor=0.9, begin=3, end=40, by_epoch=False),
])
def test_linear_lr_equals_mmengines_on_mmengines_arguments(kwargs):
    ours, theirs = sgd(0.05, 0.5), sgd(0.05, 0.5)
    for group in (0, 1):
        assert lrs_over(ours, [LinearLR(ours, **kwargs)], 45, group) == \
            pytest.approx(lrs_over(theirs, [MMEngineLinearLR(theirs,
                                                            **kwargs)], 45,
                                   group), rel=1e-12)


@pytest.mark.parametrize('verbose', [False, True])
def test_last_values_and_verbose_logging_as_mmengines(verbose, monkeypatch):
    # the same lrs, get_last_value() and (verbose) log lines per group as
    # mmengine's LinearLR, on an OptimWrapper with its base group
    logged = {'ours': [], 'theirs': []}
    runs = {}
    for name, cls in (('ours', LinearLR), ('theirs', MMEngineLinearLR)):
        monkeypatch.setattr(
            'mmengine.optim.scheduler.param_scheduler.print_log',
            lambda msg, **kw: logged[name].append(msg))
        wrapper = OptimWrapper(sgd(0.05, 0.5))
        scheduler = cls(wrapper, start_factor=0.5, end=5, verbose=verbose)
        seen = []
        for _ in range(7):
            wrapper.step()
            scheduler.step()
            seen += scheduler.get_last_value()
        runs[name] = seen
    assert len(runs['ours']) == 7 * 3  # two groups and the base group
    assert runs['ours'] == pytest.approx(runs['theirs'], rel=1e-12)
    assert logged['ours'] == logged['theirs']
    assert bool(logged['ours']) == verbose


def test_one_step_window_applies_end_factor_not_start_factor_forever():
    # mmengine leaves 0.05 * 0.5 in place for good when end - begin == 1.
    o = sgd(0.05)
    assert lrs_over(o, [LinearLR(o, start_factor=0.5, end_factor=0.8,
                                 begin=2, end=3)], 5) == \
        pytest.approx([0.05, 0.05, 0.04, 0.04, 0.04])


def test_warm_up_from_zero_does_not_divide_by_zero():
    # 0.1 * t / 4 (mmengine raises ZeroDivisionError on the second step)
    o = sgd(0.1)
    assert lrs_over(o, [LinearLR(o, start_factor=0.0, end=5)], 6) == \
        pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])


def test_warm_up_from_zero_keeps_what_another_scheduler_did_beneath():
    # MultiStepLR halves the lr at step 1 while the warm-up holds it at 0;
    # from step 2 on the warm-up applies its factor to the halved lr.
    o = sgd(0.1)
    chain = [LinearLR(o, start_factor=0.0, end=3),
             MultiStepLR(o, milestones=[1], gamma=0.5)]
    # step 0: 0.1 * 0; step 1: 0.1 * .5 * .5; step 2: 0.1 * .5 * 1
    assert lrs_over(o, chain, 4) == pytest.approx([0.0, 0.025, 0.05, 0.05])


def ramp(t: int, start: float, end: float, steps: int) -> float:
    """Hand formula of a linear factor over ``steps`` steps, then held."""
    return start + (end - start) * min(t, steps) / steps


@pytest.mark.parametrize('second', [
    dict(start_factor=0.5, end_factor=1.0),  # the lr ended 2x too high
    dict(start_factor=0.0, end_factor=1.0),  # the lr stayed 0 for good
    dict(start_factor=1.0, end_factor=0.0),  # a decay over the warm-up
])
def test_ramps_overlapping_a_warm_up_from_zero_multiply(second):
    # warm-up 0 -> 1 over 10 steps listed first, the second ramp over 20,
    # both from step 0: lr(t) = 0.1 * warm(t) * second(t)
    o = sgd(0.1)
    chain = [LinearLR(o, start_factor=0.0, end=11),
             LinearLR(o, end=21, **second)]
    expected = [
        0.1 * ramp(t, 0.0, 1.0, 10) *
        ramp(t, second['start_factor'], second['end_factor'], 20)
        for t in range(30)
    ]
    assert lrs_over(o, chain, 30) == pytest.approx(expected, rel=1e-12,
                                                   abs=1e-18)


def test_two_warm_ups_from_zero_multiply_in_either_order():
    o = sgd(0.1)
    chain = [LinearLR(o, start_factor=0.0, end=21),
             LinearLR(o, start_factor=0.0, end=11)]
    expected = [0.1 * ramp(t, 0, 1, 20) * ramp(t, 0, 1, 10)
                for t in range(30)]
    assert lrs_over(o, chain, 30) == pytest.approx(expected, rel=1e-12,
                                                   abs=1e-18)


@pytest.mark.parametrize('first', [
    lambda o: MMEngineLinearLR(o, start_factor=0.5, end=5),
    lambda o: ConstantLR(o, factor=0.5, end=5),
])
def test_warm_up_from_zero_after_a_scaling_scheduler_is_refused(first):
    # mmengine's schedulers multiply the lr they find: mmengine's LinearLR
    # would multiply the warm-up's 0 at step 1 and lose its ramp (and divide
    # by zero); ConstantLR would lift the lr 2x too high at its end.
    o = sgd(0.1)
    first(o)
    with pytest.raises(ValueError, match='would be lost'):
        LinearLR(o, start_factor=0.0, end=11)


@pytest.mark.parametrize('warm_up_first', [True, False])
def test_warm_up_from_zero_and_another_ramp_multiply_in_either_order(
        warm_up_first):
    # 0.1 * t/10 * (0.5 + 0.5 * t/20): the ramps share what lies beneath
    # the warm-up's 0, so the other one's factor is not lost at step 1.
    o = sgd(0.1)
    warm = dict(start_factor=0.0, end=11)
    other = dict(start_factor=0.5, end=21)
    chain = [LinearLR(o, **warm), LinearLR(o, **other)] if warm_up_first \
        else [LinearLR(o, **other), LinearLR(o, **warm)]
    expected = [0.1 * ramp(t, 0, 1, 10) * ramp(t, 0.5, 1, 20)
                for t in range(30)]
    assert lrs_over(o, chain, 30) == pytest.approx(expected, rel=1e-12,
                                                   abs=1e-18)


def test_warm_up_from_zero_after_schedulers_that_wait_is_accepted():
    o = sgd(0.1)
    MultiStepLR(o, milestones=[5])  # changes nothing at step 0
    LinearLR(o, start_factor=0.0, end=11)
    assert o.param_groups[0]['lr'] == 0.0


@pytest.mark.parametrize('decay_first', [True, False])
def test_a_ramp_to_zero_keeps_the_lr_at_zero(decay_first):
    # a decay reaching 0 at step 10 under a warm-up from 0 over 20 steps:
    # 0.1 * (1 - t/10) * t/20, then 0 for good
    o = sgd(0.1)
    decay = dict(start_factor=1.0, end_factor=0.0, end=11)
    warm = dict(start_factor=0.0, end=21)
    chain = [LinearDecayLR(o, **decay), LinearLR(o, **warm)] if decay_first \
        else [LinearLR(o, **warm), LinearDecayLR(o, **decay)]
    seen = lrs_over(o, chain, 30)
    expected = [0.1 * ramp(t, 1, 0, 10) * ramp(t, 0, 1, 20)
                for t in range(30)]
    # in both orders: 0, 0.1 * 0.9 * 1/20 = 0.0045, 0.1 * 0.8 * 2/20 = 0.008,
    # 0.1 * 0.7 * 3/20 = 0.0105, ...
    assert seen[:4] == pytest.approx([0, 0.0045, 0.008, 0.0105], rel=1e-12)
    assert seen == pytest.approx(expected, rel=1e-12, abs=1e-18)
    assert seen[10:] == [0.0] * 20


def test_ramp_under_a_poly_decay_to_zero_stays_at_zero():
    # PolyLR (eta_min 0, power 1, end 20) reaches 0 at step 19; the ramp
    # beneath it must not bring the lr back
    o = sgd(0.1)
    chain = [PolyLR(o, eta_min=0.0, power=1.0, end=20),
             LinearDecayLR(o, start_factor=1.0, end_factor=0.5, end=30)]
    seen = lrs_over(o, chain, 30)
    assert seen[19:] == [0.0] * 11 and seen[18] > 0


def test_warm_up_from_zero_then_cosine_matches_mmengine_from_a_tiny_start():
    # the same chain with mmengine's LinearLR from 1e-9 instead of 0 (which
    # mmengine cannot do) is the limit ours must reach
    ours, theirs = sgd(0.1), sgd(0.1)
    chain = [LinearLR(ours, start_factor=0.0, end=11),
             CosineAnnealingLR(ours, T_max=40, eta_min=1e-3)]
    reference = [MMEngineLinearLR(theirs, start_factor=1e-9, end=11),
                 CosineAnnealingLR(theirs, T_max=40, eta_min=1e-3)]
    expected = lrs_over(theirs, reference, 45)[1:]
    assert lrs_over(ours, chain, 45)[1:] == pytest.approx(expected,
                                                          rel=1e-6)
    # Listed the other way round the cosine acts on the warm-up's 0 at step
    # 1 (it adds eta_min; lost, as any change made while the lr is 0); the
    # warm-up must still lift the lr (it stayed near eta_min, 40x too low,
    # when it took that value as its base).
    o = sgd(0.1)
    swapped = [CosineAnnealingLR(o, T_max=40, eta_min=1e-3),
               LinearLR(o, start_factor=0.0, end=11)]
    # By hand: mmengine's own cosine acts on the value the warm-up left;
    # the warm-up then divides out its last factor (at step 1 that factor
    # was 0, so the cosine's change is lost and the lr beneath stays 0.1)
    # and applies its next one, t / 10.
    ref = sgd(0.1)
    cosine = CosineAnnealingLR(ref, T_max=40, eta_min=1e-3)
    beneath, by_hand = 0.1, []
    ref.param_groups[0]['lr'] = 0.0
    for step in range(1, 45):
        cosine.step()
        if step > 1:
            beneath = ref.param_groups[0]['lr'] / ((step - 1) / 10 if
                                                   step <= 11 else 1.0)
        lr = beneath * min(step, 10) / 10
        ref.param_groups[0]['lr'] = lr
        by_hand.append(lr)
    assert lrs_over(o, swapped, 45)[1:] == pytest.approx(by_hand, rel=1e-12)
    # ... which is near the other order's, but not the same
    assert by_hand == pytest.approx(expected, rel=0.01)
    assert by_hand != pytest.approx(expected, rel=1e-3)


def test_overlapping_ramps_resume_inside_the_zero_step():
    def chain(o):
        return [LinearLR(o, start_factor=0.0, end=11),
                LinearLR(o, start_factor=0.5, end=21)]

    o = sgd(0.1)
    schedulers = chain(o)
    states = [s.state_dict() for s in schedulers]  # at step 0: lr 0
    whole = lrs_over(o, schedulers, 15)
    o2 = sgd(0.1)
    fresh = chain(o2)
    for s, state in zip(fresh, states):
        s.load_state_dict(state)
    assert lrs_over(o2, fresh, 15) == whole


def test_absolute_start_and_end_keep_layer_decay_ratios():
    # optimizer lr 0.1; groups at scale 1 and 0.25 (layer decay)
    o = sgd(0.1, 0.025, lr=0.1)
    s = LinearLR(o, start_lr=0.01, end_lr=0.05, end=3)
    head = lrs_over(o, [s], 4, group=0)
    assert head == pytest.approx([0.01, 0.03, 0.05, 0.05])
    o = sgd(0.1, 0.025, lr=0.1)
    stem = lrs_over(o, [LinearLR(o, start_lr=0.01, end_lr=0.05, end=3)], 4,
                    group=1)
    assert stem == pytest.approx([x * 0.25 for x in head])


def test_olm_spelling():
    # olm LinearLR(total_steps=4, end_lr=0.01, start_factor=0.5), base 0.1:
    # 0.1*0.5*(1 - t/4) + 0.01*t/4
    o = sgd(0.1)
    s = LinearLR(o, total_steps=4, end_lr=0.01, start_factor=0.5)
    assert lrs_over(o, [s], 6) == pytest.approx(
        [0.05, 0.04, 0.03, 0.02, 0.01, 0.01])


def test_linear_decay_lr_decays_to_zero():
    o = sgd(0.1)
    assert lrs_over(o, [LinearDecayLR(o, total_steps=4)], 6) == \
        pytest.approx([0.1, 0.075, 0.05, 0.025, 0.0, 0.0])
    o = sgd(0.1)
    assert lrs_over(o, [LinearDecayLR(o, begin=1, end=4)], 5) == \
        pytest.approx([0.1, 0.1, 0.05, 0.0, 0.0])


def test_linear_lr_interval_staircase_example():
    # window [10, 30), interval 4: 19 // 4 = 4 stairs after the first, so
    # factors 1, .75, .5, .25, 0 starting at steps 10, 14, 18, 22, 26.
    o = sgd(2e-4)
    s = LinearLrInterval(o, start_factor=1.0, end_factor=0.0, interval=4,
                         begin=10, end=30, by_epoch=False)
    expected = [2e-4] * 14 + [1.5e-4] * 4 + [1e-4] * 4 + [5e-5] * 4 + [0] * 6
    assert lrs_over(o, [s], 32) == pytest.approx(expected, abs=1e-15)


def test_linear_lr_interval_of_one_is_linear_lr():
    a, b = sgd(0.1), sgd(0.1)
    ramp = dict(start_factor=0.2, end_factor=0.9, end=9)
    assert lrs_over(a, [LinearLrInterval(a, **ramp)], 12) == pytest.approx(
        lrs_over(b, [LinearLR(b, **ramp)], 12))


@pytest.mark.parametrize('first_is_linear', [True, False])
def test_overlap_composes_like_mmengine_in_either_order(first_is_linear):
    # mmengine's own test: LinearLR(0.5, end=5) with MultiStepLR([3, 6, 9])
    expected = [.025, .03125, .0375, .004375, .005, .005, .0005, .0005,
                .0005, .00005]
    o = sgd(0.05)
    linear = LinearLR(o, start_factor=0.5, end=5)
    multi = MultiStepLR(o, milestones=[3, 6, 9], gamma=0.1)
    chain = [linear, multi] if first_is_linear else [multi, linear]
    assert lrs_over(o, chain, 10) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize('cls, kwargs, factor', [
    (LinearLR, dict(start_factor=0.0, end_factor=1.0, end=100_000),
     lambda s: np.minimum(s, 99_999) / 99_999),
    (LinearDecayLR, dict(end=100_000),
     lambda s: 1 - np.minimum(s, 99_999) / 99_999),
    # stairs of 7 steps from step 5: (100_000 - 5 - 1) // 7 = 14_284 stairs
    # after the first, from 0.9 down to 0.1; factor 1 before begin
    (LinearLrInterval, dict(start_factor=0.9, end_factor=0.1, interval=7,
                            begin=5, end=100_000),
     lambda s: np.where(s < 5, 1.0, 0.9 - 0.8 * np.minimum(
         (s - 5) // 7, 14_284) / 14_284)),
])
def test_closed_form_agrees_with_chainable_over_100k_steps(cls, kwargs,
                                                           factor):
    # 100k chained steps (each divides out the last factor and multiplies
    # the next) accumulate no drift: the stepped lrs and value_at both equal
    # the hand formula base * factor(step)
    o = sgd(0.3, 0.03)
    s = cls(o, by_epoch=False, **kwargs)
    steps = np.arange(100_002)
    stepped, closed = [], []
    o.step()  # once, as mmengine checks on the first step; the lrs do not
    # depend on it (the parameters have no gradient)
    for step in steps:
        stepped.append([g['lr'] for g in o.param_groups])
        closed.append(s.value_at(int(step)))
        s.step()
    expected = np.outer(factor(steps), [0.3, 0.03])
    np.testing.assert_allclose(stepped, expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(closed, expected, rtol=1e-9, atol=1e-15)


def test_optim_wrapper_with_several_groups_schedules_its_pseudo_group():
    # OptimWrapper adds base_param_settings (the optimizer's defaults) as an
    # extra group when there are several; it follows the same factor.
    wrapper = OptimWrapper(sgd(0.1, 0.01, lr=0.1))
    assert len(wrapper.param_groups) == 3
    s = LinearLR(wrapper, start_lr=0.02, end=3)
    assert [g['lr'] for g in wrapper.param_groups] == pytest.approx(
        [0.02, 0.002, 0.02])
    s.step()
    assert [g['lr'] for g in wrapper.param_groups] == pytest.approx(
        [0.06, 0.006, 0.06])


@pytest.mark.parametrize('cfg, begin, end, extra', [
    (dict(type='mmlr.LinearLR', start_factor=0.1, end=2), 0, 20, {}),
    (dict(type='mmlr.LinearLR', start_factor=0.1, begin=0.5, end=1.5), 5, 15,
     {}),
    # total_steps=2 epochs -> ramp reaches its end after 20 iterations
    (dict(type='mmlr.LinearDecayLR', total_steps=2), 0, 21, {}),
    (dict(type='mmlr.LinearLrInterval', interval=1, begin=1, end=3), 10, 30,
     dict(interval=10)),
])
def test_convert_to_iter_based_scales_every_time_argument(
        cfg, begin, end, extra):
    o = sgd(0.1)
    s = PARAM_SCHEDULERS.build(
        dict(cfg, by_epoch=True, convert_to_iter_based=True),
        default_args=dict(optimizer=o, epoch_length=10))
    assert (s.begin, s.end, s.by_epoch) == (begin, end, False)
    for key, value in extra.items():
        assert getattr(s, key) == value


@pytest.mark.parametrize('kwargs, error, names', [
    (dict(start_factor=1.5, end=5), ValueError, 'start_factor'),
    (dict(start_factor=-0.1, end=5), ValueError, 'start_factor'),
    (dict(end_factor=2, end=5), ValueError, 'end_factor'),
    (dict(start_factor='0.1', end=5), TypeError, 'start_factor'),
    (dict(begin=5, end=5), ValueError, 'end must be larger than begin'),
    (dict(begin=-1, end=5), ValueError, 'begin'),
    (dict(end=5.5), TypeError, 'end'),
    (dict(), ValueError, 'needs end'),
    (dict(start_factor=0.1, start_lr=0.01, end=5), ValueError,
     'start_factor or start_lr'),
    (dict(end_factor=0.1, end_lr=0.01, end=5), ValueError,
     'end_factor or end_lr'),
    (dict(start_lr=0.5, end=5), ValueError, 'start_lr / optimizer lr'),
    (dict(total_steps=-1), ValueError, 'total_steps must be an int >= 0'),
    (dict(total_steps=-5, end=90), ValueError,
     'total_steps must be an int >= 0'),
    (dict(total_steps=2.5), ValueError, 'total_steps must be an int'),
    (dict(end=5, last_step=3), ValueError, 'last_step'),
])
def test_bad_arguments_are_refused_at_construction(kwargs, error, names):
    with pytest.raises(error, match=names):
        LinearLR(sgd(0.1), **kwargs)


@pytest.mark.parametrize('interval', [0, -2, 1.5, True])
def test_bad_interval_is_refused(interval):
    with pytest.raises(ValueError, match='interval'):
        LinearLrInterval(sgd(0.1), interval=interval, end=10)


def test_convert_needs_by_epoch_and_an_epoch_length():
    # (through a config, mmengine's build function asserts this first)
    with pytest.raises(ValueError, match='by_epoch'):
        LinearLR.build_iter_from_epoch(sgd(0.1), end=3, by_epoch=False,
                                       epoch_length=10)
    with pytest.raises(ValueError, match='epoch_length'):
        LinearLR.build_iter_from_epoch(sgd(0.1), end=3, epoch_length=0)


# --- Chains: the product of the factors, in any order ----------------------
#
# Each scheduler's factor at step t is what it gives alone on a fresh
# optimizer whose lr is 1: mmlr's ramps by their closed form ``value_at``
# (itself checked against the hand formula ``ramp_factor``), mmengine's by
# running them. A chain must then give every group its lr times the product,
# except where README says an mmengine scheduler's change is lost (it
# changes the lr while a ramp holds it at 0) or the chain is refused.

HORIZON = 30  # steps; every window below ends before it
OURS = {'mmlr.LinearLR': LinearLR, 'LinearDecayLR': LinearDecayLR,
        'LinearLrInterval': LinearLrInterval}
THEIRS = {'LinearLR': MMEngineLinearLR, 'ConstantLR': ConstantLR,
          'StepLR': StepLR, 'MultiStepLR': MultiStepLR,
          'ExponentialLR': ExponentialLR}


def ramp_factor(kind: str, kwargs: dict, t: int) -> float:
    """Hand formula of one of our ramps alone, 1 before ``begin``."""
    begin, end = kwargs['begin'], kwargs['end']
    start = kwargs.get('start_factor', 1.0 if kind != 'mmlr.LinearLR'
                       else 1 / 3)
    stop = kwargs.get('end_factor', 0.0 if kind != 'mmlr.LinearLR' else 1.0)
    if t < begin:
        return 1.0
    u, length = min(t, end - 1) - begin, end - begin - 1
    if kind == 'LinearLrInterval':
        u, length = u // kwargs['interval'], length // kwargs['interval']
    return stop if length == 0 else start + (stop - start) * min(
        u, length) / length


@st.composite
def scheduler_specs(draw):
    """(kind, kwargs) of one multiplicative scheduler, zeros included."""
    kind = draw(st.sampled_from(sorted(OURS) + sorted(THEIRS)))
    begin = draw(st.one_of(st.just(0), st.integers(0, 6)))  # often 0
    window = dict(begin=begin, end=begin + draw(st.integers(1, 12)),
                  by_epoch=False)
    factor = st.sampled_from([0.0, 0.2, 0.5, 1.0])
    if kind in OURS:
        kwargs = dict(window, start_factor=draw(factor),
                      end_factor=draw(factor))
        if kind == 'LinearDecayLR' and draw(st.booleans()):
            kwargs = window  # its defaults: 1 -> 0
        if kind == 'LinearLrInterval':
            kwargs['interval'] = draw(st.integers(1, 4))
    elif kind == 'LinearLR':  # mmengine's cannot start at 0
        kwargs = dict(window, start_factor=draw(st.sampled_from([0.2, 1.0])),
                      end_factor=draw(factor))
    elif kind == 'ConstantLR':  # factor 0 divides by zero at its end
        kwargs = dict(window, factor=draw(st.sampled_from([0.25, 0.5])))
    elif kind == 'StepLR':
        kwargs = dict(window, step_size=draw(st.integers(1, 5)),
                      gamma=draw(st.sampled_from([0.0, 0.5, 0.9])))
    elif kind == 'MultiStepLR':
        kwargs = dict(window, gamma=draw(st.sampled_from([0.0, 0.5])),
                      milestones=sorted(draw(st.sets(
                          st.integers(1, 15), min_size=1, max_size=3))))
    else:
        kwargs = dict(window, gamma=draw(st.sampled_from([0.0, 0.8, 0.95])))
    return kind, kwargs


def build(spec, optimizer):
    kind, kwargs = spec
    return {**OURS, **THEIRS}[kind](optimizer, **kwargs)


def factors_alone(spec) -> list:
    """The scheduler's factor at steps 0 .. HORIZON - 1, acting alone."""
    o = sgd(1.0)
    scheduler = build(spec, o)
    if spec[0] not in OURS:
        return lrs_over(o, [scheduler], HORIZON)
    closed = [scheduler.value_at(t)[0] for t in range(HORIZON)]
    assert closed == pytest.approx(
        [ramp_factor(*spec, t) for t in range(HORIZON)], rel=1e-12)
    return closed


def chain_outcome(kinds: list, factors: list) -> str:
    """What README promises for schedulers of ``kinds`` (in list order)
    with these ``factors``: 'refused', 'lossy' (an mmengine scheduler
    changes the lr while a ramp holds it at 0, and that zero is lifted
    later) or 'exact'."""
    ours = [i for i, kind in enumerate(kinds) if kind in OURS]

    def factor(i, t):
        return 1.0 if t < 0 else factors[i][t]

    def zero_for_good(j, t):
        return all(f == 0 for f in factors[j][t:])

    def holding(m, t):
        # The ramps holding the lr at 0 when scheduler m steps at step t:
        # those before it have stepped to t, those after it are still at
        # t - 1 (at t = 0: not built yet).
        return [j for j in ours if factor(j, t if j < m else t - 1) == 0]

    for j in ours:
        if factor(j, 0) == 0 and any(
                kinds[m] not in OURS and factor(m, 0) != 1
                and not holding(m, 0) for m in range(j)):
            return 'refused'
    for m, kind in enumerate(kinds):
        if kind in OURS:
            continue
        for t in range(HORIZON):
            held = holding(m, t)
            # (a ramp at 0 from t on for good keeps the lr at 0 anyway)
            if factor(m, t) != factor(m, t - 1) and held and not any(
                    zero_for_good(j, t) for j in ours):
                return 'lossy'
    return 'exact'


def check_chain(specs: list, orders: list) -> list:
    """Build ``specs`` in each of ``orders`` on a two-group optimizer (lrs
    0.1 and 0.025) and check it against the product of the factors; returns
    the outcomes."""
    factors = [factors_alone(spec) for spec in specs]
    return [check_order([specs[i] for i in order],
                        [factors[i] for i in order]) for order in orders]


def check_order(specs: list, factors: list) -> str:
    outcome = chain_outcome([kind for kind, _ in specs], factors)
    o = sgd(0.1, 0.025)
    if outcome == 'refused':
        with pytest.raises(ValueError, match='would be lost'):
            for spec in specs:
                build(spec, o)
        return outcome
    chain = [build(spec, o) for spec in specs]
    seen = [[], []]
    for _ in range(HORIZON):
        for group, values in zip(o.param_groups, seen):
            values.append(group['lr'])
        o.step()
        for s in chain:
            s.step()
    products = [[base * math.prod(f[t] for f in factors)
                 for t in range(HORIZON)] for base in (0.1, 0.025)]
    if outcome == 'exact':
        assert seen == [pytest.approx(p, rel=1e-9, abs=1e-15)
                        for p in products]
    # in every case, layer decay keeps its ratio
    assert seen[1] == pytest.approx([v / 4 for v in seen[0]], rel=1e-9,
                                    abs=1e-15)
    if outcome == 'lossy' and seen == [pytest.approx(p, rel=1e-9, abs=1e-15)
                                       for p in products]:
        return 'lossy, yet the product'  # the lost changes cancelled
    return outcome


@st.composite
def chains(draw):
    """A list of schedulers and a second order of the same list."""
    specs = draw(st.lists(scheduler_specs(), min_size=1, max_size=4))
    return specs, draw(st.permutations(range(len(specs))))


@settings(max_examples=100)
@given(chains())
# the measured case: decay to 0 and warm-up from 0, both orders
@example(([('LinearDecayLR', dict(begin=0, end=11, by_epoch=False)),
           ('mmlr.LinearLR', dict(start_factor=0.0, end_factor=1.0, begin=0,
                                  end=21, by_epoch=False))], [1, 0]))
# refused one way, lossy the other (mmengine's LinearLR changes at 0 and 1)
@example(([('LinearLR', dict(start_factor=0.2, end_factor=1.0, begin=0,
                             end=5, by_epoch=False)),
           ('mmlr.LinearLR', dict(start_factor=0.0, end_factor=1.0, begin=0,
                                  end=11, by_epoch=False))], [1, 0]))
# found by the sweep: mmengine's LinearLR multiplying by exactly 1 at step 0
# is no change, though dividing out the ramp before it rounds
@example(([('LinearDecayLR', dict(start_factor=0.0, end_factor=0.2, begin=0,
                                  end=1, by_epoch=False)),
           ('LinearLR', dict(start_factor=1.0, end_factor=0.0, begin=0,
                             end=1, by_epoch=False)),
           ('LinearDecayLR', dict(start_factor=0.0, end_factor=0.0, begin=0,
                                  end=1, by_epoch=False))], [0, 1, 2]))
def test_chains_give_the_product_of_factors_in_any_order(chain):
    specs, order = chain
    check_chain(specs, [range(len(specs)), order])


def test_chain_outcomes_of_worked_examples():
    # The rule by hand, for the generator above: warm-up from 0 over 10
    # steps (mmlr) with mmengine's ExponentialLR from step 0, which changes
    # the lr at step 1 (the warm-up's zero is at step 0).
    warm = [0.0] + [t / 10 for t in range(1, HORIZON)]
    exp = [0.9 ** t for t in range(HORIZON)]
    assert chain_outcome(['mmlr.LinearLR', 'ExponentialLR'],
                         [warm, exp]) == 'exact'
    # listed first, ExponentialLR multiplies the 0 at step 1: lost
    assert chain_outcome(['ExponentialLR', 'mmlr.LinearLR'],
                         [exp, warm]) == 'lossy'
    # mmengine's LinearLR changes the lr at step 0 and 1: no order is exact,
    # and listed first the warm-up from 0 after it is refused
    mm_linear = [0.5 + 0.5 * min(t, 4) / 4 for t in range(HORIZON)]
    assert chain_outcome(['mmlr.LinearLR', 'LinearLR'],
                         [warm, mm_linear]) == 'lossy'
    assert chain_outcome(['LinearLR', 'mmlr.LinearLR'],
                         [mm_linear, warm]) == 'refused'
    # a decay that stays at 0 hides nothing that could come back
    decay = [max(0.0, 1 - t / 5) for t in range(HORIZON)]
    assert chain_outcome(['mmlr.LinearLR', 'ExponentialLR'],
                         [decay, exp]) == 'exact'


def test_start_lr_with_an_optimizer_lr_of_zero_is_refused_by_name():
    with pytest.raises(ValueError, match=r'start_lr=1e-06 is a fraction of '
                       r'the optimizer lr, which is 0'):
        LinearLR(sgd(0.0), start_lr=1e-6, end=5)
    with pytest.raises(ValueError, match='end_lr=0.001 .* optimizer lr'):
        LinearDecayLR(sgd(0.0), end_lr=1e-3, end=5)


@pytest.mark.parametrize('cfg, message', [
    (dict(type='LinearDecayLR', total_steps=-5, by_epoch=True,
          convert_to_iter_based=True), r'a number >= 0 .*got -5\b'),
    (dict(type='LinearDecayLR', total_steps=True, by_epoch=True,
          convert_to_iter_based=True), 'total_steps must be a number'),
    (dict(type='LinearLrInterval', interval=-2, end=3, by_epoch=True,
          convert_to_iter_based=True), r'interval must be .*got -2\b'),
])
def test_converted_time_arguments_are_checked_before_scaling(cfg, message):
    # scaled first, -5 epochs became -50 iterations and interval=-2 a stair
    # of one iteration
    with pytest.raises(ValueError, match=message):
        PARAM_SCHEDULERS.build(cfg, default_args=dict(optimizer=sgd(0.1),
                                                      epoch_length=10))


def test_total_steps_replaces_an_end_filled_in_beside_it(monkeypatch):
    # A Runner fills end in from max_iters; total_steps decides the window
    import mmlr.schedulers.ramp as ramp_module
    logged = []
    monkeypatch.setattr(ramp_module, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    o = sgd(0.1)
    s = LinearDecayLR(o, total_steps=4, end=90, by_epoch=False)
    assert (s.begin, s.end) == (0, 5)
    assert logged == ['LinearDecayLR: total_steps=4 sets end=5; end=90 (a '
                      'Runner fills it in from max_epochs/max_iters) is not '
                      'used']
    assert lrs_over(o, [s], 6) == pytest.approx(
        [0.1, 0.075, 0.05, 0.025, 0.0, 0.0])


class _Tiny(torch.nn.Module):
    """The smallest model a Runner trains: one weight, loss = weight**2."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=(self.weight ** 2).sum() + 0 * inputs.sum())


@pytest.mark.parametrize('scheduler, end, expected', [
    # 10 iterations; total_steps=4 by iteration: 0.1 * (1 - t/4), then 0
    (dict(type='LinearDecayLR', total_steps=4, by_epoch=False), 5,
     [0.1 * max(0.0, 1 - t / 4) for t in range(10)]),
    # 2 epochs of 5 iterations; total_steps=1 epoch -> 5 iterations
    (dict(type='LinearDecayLR', total_steps=1, by_epoch=True,
          convert_to_iter_based=True), 6,
     [0.1 * max(0.0, 1 - t / 5) for t in range(10)]),
])
def test_total_steps_in_a_runner(scheduler, end, expected, tmp_path):
    from mmengine.hooks import Hook
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Model(BaseModel):

        def __init__(self):
            super().__init__()
            self.tiny = _Tiny()

        def forward(self, inputs, data_samples=None, mode='loss'):
            return self.tiny(torch.stack(inputs))

    class RecordLr(Hook):
        seen = []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.seen.append(runner.optim_wrapper.get_lr()['lr'][0])

    hook = RecordLr()
    by_epoch = scheduler['by_epoch']
    runner = Runner(
        model=Model(),
        work_dir=str(tmp_path),
        experiment_name=f'total_steps_{by_epoch}',
        train_dataloader=dict(
            dataset=[dict(inputs=torch.zeros(1))] * 5,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate'), batch_size=1),
        train_cfg=dict(by_epoch=True, max_epochs=2) if by_epoch else dict(
            by_epoch=False, max_iters=10),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        param_scheduler=[scheduler],
        custom_hooks=[hook],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope='mmengine')  # mmlr is imported: bare LinearDecayLR
    runner.train()
    assert runner.param_schedulers[0].end == end
    assert hook.seen == pytest.approx(expected, abs=1e-15)


def test_total_steps_in_vis_lr_curves():
    # the analysis fills end in as the Runner does (max_iters = 90)
    from mmlr.analysis import TrainLength, build_tracks
    wrapper = OptimWrapper(sgd(0.1))
    tracks = build_tracks(wrapper, [dict(type='LinearDecayLR', total_steps=50,
                                         by_epoch=False)],
                          TrainLength(False, 1, 90, None))
    assert tracks[0].schedulers[0].end == 51
