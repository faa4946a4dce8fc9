"""CooldownLR and InverseSqrtLR: the papers' formulas at every step, layer
decay ratios, chains with mmengine's schedulers, resume, placement, checks."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmengine.optim.scheduler import (ConstantLR, CosineAnnealingLR,
                                      ExponentialLR, MultiStepLR, StepLR)
from mmengine.optim.scheduler import LinearLR as MMEngineLinearLR
from mmengine.registry import PARAM_SCHEDULERS, DefaultScope

import mmlr  # noqa: F401
from mmlr.schedulers import CooldownLR, InverseSqrtLR, LinearLR
from test_schedulers_linear import lrs_over, sgd
from test_schedulers_state import assert_plain, roundtrip

# --- The formulas, by hand --------------------------------------------------
#
# Hägele et al. 2024 (arXiv 2405.18392), section 3: a run of N steps that
# cools down over its last N_c steps trains step n >= N - N_c at
#   lr(n) = floor + (lr - floor) * f((n - (N - N_c)) / N_c)
# with f(x) = 1 - x (linear), (1 + cos(pi x)) / 2 (cosine) or 1 - sqrt(x)
# (their "(1-sqrt)"), reaching the floor at n = N. Here the floor is a ratio
# r of each group's lr: floor = r * lr.


def paper_cooldown(shape: str, n: int, N: int, N_c: int, r: float) -> float:
    """Factor of the lr at step n (1 before the cooldown, r from N on)."""
    if n < N - N_c:
        return 1.0
    if n >= N:
        return r
    x = (n - (N - N_c)) / N_c
    f = {'linear': 1 - x,
         'cosine': (1 + math.cos(math.pi * x)) / 2,
         '1-sqrt': 1 - math.sqrt(x)}[shape]
    return r + (1 - r) * f


def vaswani(t: int, w: int) -> float:
    """Vaswani et al. 2017, eq. (3), divided by its peak (at t = w):
    d^-0.5 * min(t^-0.5, t * w^-1.5) / (d^-0.5 * w^-0.5); for t >= w that
    is sqrt(w / t). (The warm-up part, t < w, is a separate scheduler.)"""
    return min(t ** -0.5, t * w ** -1.5) / w ** -0.5 if t >= w else 1.0


def mmengine_warm_up(t: int, start: float, end: int) -> float:
    """mmengine's LinearLR factor: start + (1 - start) * min(t, end-1) /
    (end - 1)."""
    return start + (1 - start) * min(t, end - 1) / (end - 1)


def assert_rel(seen: list, expected: list, rel: float = 1e-12) -> None:
    assert len(seen) == len(expected)
    for step, (a, b) in enumerate(zip(seen, expected)):
        assert abs(a - b) <= rel * abs(b), (step, a, b)


# layer decay: the head at 0.1, each layer below 0.75 of the one above
DECAY = [0.75 ** k for k in range(6)]


def layer_decayed() -> torch.optim.SGD:
    return sgd(*[0.1 * d for d in DECAY], lr=0.1)


def every_group(o, schedulers, steps: int) -> list:
    """Each group's lr at each step: ``[group][step]``."""
    seen = [[] for _ in o.param_groups]
    for _ in range(steps):
        for group, values in zip(o.param_groups, seen):
            values.append(group['lr'])
        o.step()
        for s in schedulers:
            s.step()
    return seen


@pytest.mark.parametrize('shape', ['linear', 'cosine', '1-sqrt'])
@pytest.mark.parametrize('r', [0.0, 0.1])
def test_cooldown_follows_the_paper_at_every_step(shape, r):
    # N = 20, the last N_c = 8 steps: begin 12, end 20; 6 steps past it
    o = layer_decayed()
    s = CooldownLR(o, shape=shape, min_lr_ratio=r, begin=12, end=20,
                   by_epoch=False)
    seen = every_group(o, [s], 26)
    for base, values in zip(DECAY, seen):
        assert_rel(values, [0.1 * base * paper_cooldown(shape, n, 20, 8, r)
                            for n in range(26)])
    assert_rel([s.value_at(n)[0] for n in range(26)], seen[0])


@pytest.mark.parametrize('placement, begin', [
    (dict(length=8), 12),
    (dict(fraction=0.4), 12),  # 0.4 of the 20 steps 0 .. end
    (dict(fraction=0.23), 15),  # 4.6 steps: rounded to 5
    (dict(fraction=1.0), 0),
    (dict(), 0),  # the whole run
])
def test_length_or_fraction_places_the_cooldown_before_end(placement, begin):
    s = CooldownLR(sgd(0.1), end=20, by_epoch=False, **placement)
    assert (s.begin, s.end) == (begin, 20)


def test_wsd_keeps_every_layer_ratio_to_the_head_through_the_cooldown():
    # warm-up from 1 % over 5 steps (mmlr's = mmengine's numbers), hold,
    # 1-sqrt cooldown over the last 30 % of 40 steps (12) to 10 % of each
    # group's lr; 5 steps past the end of the window
    o = layer_decayed()
    chain = [LinearLR(o, start_factor=0.01, end=5, by_epoch=False),
             CooldownLR(o, shape='1-sqrt', fraction=0.3, min_lr_ratio=0.1,
                        end=40, by_epoch=False)]
    seen = every_group(o, chain, 45)
    wsd = [mmengine_warm_up(n, 0.01, 5) *
           paper_cooldown('1-sqrt', n, 40, 12, 0.1) for n in range(45)]
    for base, values in zip(DECAY, seen):
        assert_rel(values, [0.1 * base * f for f in wsd])
        assert_rel([v / head for v, head in zip(values, seen[0])],
                   [base] * 45)
    assert seen[5][-1] == pytest.approx(0.1 * 0.75 ** 5 * 0.1, rel=1e-12)
    # mmengine's cosine with an absolute eta_min ends every group at it
    o = layer_decayed()
    cosine = CosineAnnealingLR(o, T_max=40, eta_min=0.001, end=41,
                               by_epoch=False)
    last = [values[-1] for values in every_group(o, [cosine], 41)]
    assert last == pytest.approx([0.001] * 6)


@pytest.mark.parametrize('begin', [0, 3])
def test_inverse_sqrt_after_a_warm_up_follows_vaswani(begin):
    # t counts from begin; warm-up of w = 4 steps, then sqrt(w / t)
    o = layer_decayed()
    chain = [LinearLR(o, start_factor=0.25, begin=begin, end=begin + 4,
                      by_epoch=False),
             InverseSqrtLR(o, warmup=4, begin=begin, by_epoch=False)]
    seen = every_group(o, chain, 60)
    expected = [1.0 if n < begin else
                mmengine_warm_up(n - begin, 0.25, 4) * vaswani(n - begin, 4)
                for n in range(60)]
    for base, values in zip(DECAY, seen):
        assert_rel(values, [0.1 * base * f for f in expected])
    assert seen[0][begin + 16] == pytest.approx(0.05, rel=1e-12)  # 1/2 at 4w
    assert_rel([chain[1].value_at(n)[0] for n in range(60)],
               [0.1 * (1.0 if n < begin else vaswani(n - begin, 4))
                for n in range(60)])


# --- Chains with mmengine's schedulers and mmlr's ---------------------------

HORIZON = 30
THEIRS = {
    'ExponentialLR': lambda o: ExponentialLR(o, gamma=0.9, begin=2, end=14,
                                             by_epoch=False),
    'StepLR': lambda o: StepLR(o, step_size=4, gamma=0.5, end=25,
                               by_epoch=False),
    'MultiStepLR': lambda o: MultiStepLR(o, milestones=[7, 21], gamma=0.3,
                                         by_epoch=False),
    'ConstantLR': lambda o: ConstantLR(o, factor=0.5, begin=3, end=9,
                                       by_epoch=False),
    'LinearLR': lambda o: MMEngineLinearLR(o, start_factor=0.2, end=6,
                                           by_epoch=False),
}
OURS = {
    'mmlr.LinearLR': (lambda o: LinearLR(o, start_factor=0.1, end=5,
                                         by_epoch=False),
                      lambda n: mmengine_warm_up(n, 0.1, 5)),
    'cooldown': (lambda o: CooldownLR(o, shape='cosine', length=10, end=24,
                                      min_lr_ratio=0.2, by_epoch=False),
                 lambda n: paper_cooldown('cosine', n, 24, 10, 0.2)),
    'cooldown to 0': (lambda o: CooldownLR(o, shape='1-sqrt', fraction=0.5,
                                           end=18, by_epoch=False),
                      lambda n: paper_cooldown('1-sqrt', n, 18, 9, 0.0)),
    'inverse sqrt': (lambda o: InverseSqrtLR(o, warmup=3, begin=4,
                                             by_epoch=False),
                     lambda n: 1.0 if n < 4 else vaswani(n - 4, 3)),
}


def factor_alone(kind: str) -> list:
    if kind in OURS:
        return [OURS[kind][1](n) for n in range(HORIZON)]
    o = sgd(1.0)
    return lrs_over(o, [THEIRS[kind](o)], HORIZON)


@settings(max_examples=60)
@given(st.lists(st.sampled_from(sorted(OURS) + sorted(THEIRS)), min_size=2,
                max_size=5, unique=True).filter(
                    lambda kinds: any(k in OURS for k in kinds)))
def test_chains_give_the_product_of_the_factors_in_any_order(kinds):
    # None of these holds the lr at 0 while another changes it (the decay
    # to 0 stays there for good), so README's rule says: exact.
    o = sgd(0.1, 0.025)
    chain = [OURS[k][0](o) if k in OURS else THEIRS[k](o) for k in kinds]
    seen = every_group(o, chain, HORIZON)
    factors = [factor_alone(k) for k in kinds]
    for base, values in zip((0.1, 0.025), seen):
        expected = [base * math.prod(f[n] for f in factors)
                    for n in range(HORIZON)]
        assert values == pytest.approx(expected, rel=1e-9, abs=1e-15)


# --- Resume --------------------------------------------------------------


def wsd_chain(o) -> list:
    return [LinearLR(o, start_factor=0.01, end=5, by_epoch=False),
            ExponentialLR(o, gamma=0.98, by_epoch=False),
            CooldownLR(o, shape='1-sqrt', fraction=0.25, min_lr_ratio=0.05,
                       end=40, by_epoch=False)]


@pytest.mark.parametrize('stop', [29, 33, 38])  # cooldown: steps 30 .. 39
def test_resume_mid_cooldown_continues_identically(stop):
    o = layer_decayed()
    chain = wsd_chain(o)
    whole = every_group(o, chain, stop + 1)
    saved = [roundtrip(s.state_dict()) for s in chain]
    for state in saved:
        assert_plain(state)
    saved_optimizer = roundtrip(o.state_dict())
    whole = [values + more for values, more in zip(
        whole, every_group(o, chain, 45 - stop - 1))]

    o2 = layer_decayed()
    fresh = wsd_chain(o2)
    o2.load_state_dict(saved_optimizer)
    for s, state in zip(fresh, saved):
        s.load_state_dict(state)
    # saved after the step that set the lrs of step stop + 1
    resumed = every_group(o2, fresh, 45 - stop - 1)
    for values, again in zip(whole, resumed):
        assert again == values[stop + 1:]


# --- convert_to_iter_based and the registry --------------------------------


def build(cfg: dict, epoch_length: int = 10, scope: str = 'mmengine'):
    with DefaultScope.overwrite_default_scope(scope):
        return PARAM_SCHEDULERS.build(cfg, default_args=dict(
            optimizer=sgd(0.1), epoch_length=epoch_length))


@pytest.mark.parametrize('cfg, window', [
    (dict(length=1.5), (25, 40)),  # 1.5 of 4 epochs, 10 iterations each
    (dict(fraction=0.33), (27, 40)),  # 13.2 of 40 iterations: 13
    (dict(begin=1), (10, 40)),
])
def test_convert_to_iter_based_places_the_cooldown_in_iterations(cfg,
                                                                 window):
    s = build(dict(type='CooldownLR', end=4, by_epoch=True,
                   convert_to_iter_based=True, **cfg))
    assert (s.begin, s.end, s.by_epoch) == (*window, False)


def test_convert_to_iter_based_scales_the_inverse_sqrt_warm_up():
    s = build(dict(type='InverseSqrtLR', warmup=0.5, begin=1, by_epoch=True,
                   convert_to_iter_based=True))
    assert (s.warmup, s.begin, s.by_epoch) == (5, 10, False)


@pytest.mark.parametrize('scope', ['mmengine', None, 'mmlr'])
def test_bare_and_scoped_names_build_ours(scope):
    assert type(build(dict(type='CooldownLR', end=5), scope=scope)) is \
        CooldownLR
    assert type(build(dict(type='mmlr.InverseSqrtLR', warmup=2),
                      scope=scope)) is InverseSqrtLR


# --- Bad input: one message naming the key ----------------------------------


@pytest.mark.parametrize('kwargs, message', [
    (dict(length=25, end=20), 'CooldownLR: length=25 iterations is longer '
     'than the run: end=20'),
    (dict(fraction=1.5, end=20), r'CooldownLR: fraction must be in \(0, 1\]'
     r'.* got 1.5: a cooldown longer than the run'),
    (dict(fraction=0.0, end=20), r'fraction must be in \(0, 1\]'),
    (dict(fraction=0.01, end=20), 'fraction=0.01 of end=20 iterations is '
     'less than one step'),
    (dict(min_lr_ratio=1.5, end=20), r'min_lr_ratio must be in \[0, 1\], '
     'got 1.5'),
    (dict(min_lr_ratio=-0.1, end=20), r'min_lr_ratio must be in \[0, 1\]'),
    (dict(shape='sqrt', end=20), "shape must be one of 'linear', 'cosine', "
     "'1-sqrt', got 'sqrt'"),
    (dict(begin=3, fraction=0.5, end=20), 'give one of begin, length and '
     'fraction to place the cooldown, not begin and fraction'),
    (dict(length=0, end=20), 'length must be an int >= 1'),
    (dict(length=5), 'CooldownLR needs end'),
])
def test_bad_cooldown_arguments_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CooldownLR(sgd(0.1), by_epoch=False, **kwargs)


def test_a_converted_cooldown_longer_than_the_run_names_the_epochs():
    with pytest.raises(ValueError, match='length=5 epochs is longer than the '
                       'run: end=4'):
        build(dict(type='CooldownLR', length=5, end=4, by_epoch=True,
                   convert_to_iter_based=True))


@pytest.mark.parametrize('warmup', [0, -2, 1.5, True])
def test_bad_inverse_sqrt_warm_up_is_refused(warmup):
    with pytest.raises(ValueError, match='warmup must be an int >= 1'):
        InverseSqrtLR(sgd(0.1), warmup=warmup)
