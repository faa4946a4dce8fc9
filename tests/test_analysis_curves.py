"""mmlr.analysis on the example configs: the simulated curves against
mmengine's schedulers stepped by hand, closed forms, and torch's
ReduceLROnPlateau; each schedule warning on a config made to trigger it."""
import math

import numpy as np
import pytest
import torch

from mmlr.analysis import (build_tracks, check_schedule, simulate,
                           train_length, write_csv)
from mmlr.config_build import build_model, build_optim_wrapper_of, load_config
from mmlr.schedulers import LinearLrInterval
from conftest import REPO, warm_up_then_cosine_by_hand

# 1,438 training digits / batch 32 = 44.9 -> 45 iterations (drop_last off)
EPOCH = 45


def curves_of(path, **kwargs):
    cfg = load_config(str(REPO / path))
    model, _ = build_model(cfg)
    wrapper = build_optim_wrapper_of(cfg, model)
    length = train_length(cfg)  # the ViT-B config: from its vis_lr_cfg
    merge = kwargs.pop('merge', True)
    tracks = build_tracks(wrapper, cfg.param_scheduler, length, merge=merge)
    return tracks, length, simulate(tracks, length, **kwargs)


def by_hand(lr: float) -> np.ndarray:
    """The base schedule (warm-up from 1 % over epoch 0, cosine to 1e-5 by
    epoch over 30) stepped by hand with mmengine's classes."""
    return np.array(warm_up_then_cosine_by_hand(
        lr, 30, EPOCH, start_factor=0.01, eta_min=1e-5))


def test_default_schedule_equals_mmengine_stepped_by_hand():
    _, length, curves = curves_of('configs/vit_digits.py')
    assert (length.epoch_length, length.max_iters) == (EPOCH, 30 * EPOCH)
    np.testing.assert_allclose(curves.values[:, 0], by_hand(2e-3),
                               rtol=1e-12)
    # hand formulas: 1 % of 2e-3 at iteration 0, full lr at 44 (the ramp's
    # last step), cosine at epoch 10: 1e-5 + (2e-3 - 1e-5)(1 + cos(9pi/29))/2
    assert curves.values[0, 0] == pytest.approx(2e-5)
    assert curves.values[44, 0] == pytest.approx(2e-3)
    assert curves.values[10 * EPOCH, 0] == pytest.approx(
        1e-5 + (2e-3 - 1e-5) * (1 + math.cos(9 * math.pi / 29)) / 2)


def test_layer_decay_groups_follow_their_own_base_lr():
    # layer d of 6 starts at 2e-3 * 0.75 ** (5 - d); the absolute eta_min
    # keeps the curves from being exact multiples, so each is stepped alone.
    _, _, curves = curves_of('configs/vit_digits_layer_decay.py')
    values = curves.group_values()
    assert values.shape == (30 * EPOCH, 12)
    for group in range(12):
        # a decayed and an undecayed group per layer, top layer first
        depth = 5 - group // 2
        np.testing.assert_allclose(values[:, group],
                                   by_hand(2e-3 * 0.75**(5 - depth)),
                                   rtol=1e-12)


def test_merged_groups_equal_every_group_stepped():
    _, _, merged = curves_of('configs/vit_digits_layer_decay.py')
    _, _, full = curves_of('configs/vit_digits_layer_decay.py', merge=False)
    assert merged.values.shape[1] == 6 and full.values.shape[1] == 12
    np.testing.assert_array_equal(merged.group_values(), full.group_values())


def test_staircase_equals_closed_form_value_at():
    _, _, curves = curves_of('configs/vit_digits_staircase.py')
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    # begin=15, end=30, interval=3 epochs, in iterations
    reference = LinearLrInterval(opt, start_factor=1.0, end_factor=0.0,
                                 interval=3 * EPOCH, begin=15 * EPOCH,
                                 end=30 * EPOCH, by_epoch=False)
    expected = [reference.value_at(t)[0] for t in range(30 * EPOCH)]
    np.testing.assert_allclose(curves.values[:, 0], expected, rtol=1e-12)


def test_plateau_reduces_where_torch_reduce_on_plateau_does():
    metrics = [0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.79, 0.9, 0.9, 0.9, 0.9, 0.9]
    _, length, curves = curves_of('configs/vit_digits_plateau.py',
                                  metrics=metrics)
    assert curves.validations[:3] == [EPOCH, 2 * EPOCH, 3 * EPOCH]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    torch_plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode='max', factor=0.5, patience=2, threshold=1e-4,
        min_lr=1e-5)
    for epoch, value in enumerate(metrics, start=1):
        torch_plateau.step(value)
        # validation after epoch e sets the lr of epoch e's successor
        assert curves.values[epoch * EPOCH, 0] == pytest.approx(
            opt.param_groups[0]['lr']), epoch
    # torch halves after the 3rd non-improving check: epochs 6 and 11
    lrs = curves.values[[e * EPOCH for e in range(1, 13)], 0]
    assert list(np.flatnonzero(np.diff(lrs) < 0) + 2) == [6, 11]
    # no metrics left after epoch 12: the lr holds
    assert curves.values[-1, 0] == curves.values[12 * EPOCH, 0]


@pytest.mark.parametrize('name, expected', [
    ('warn_overlap', 'both act on iterations 45-134'),
    ('warn_gap', 'no scheduler acts on iterations 45-224'),
    # 2e-3 * 0.1 ** (5 - d) < 1e-5 for d = 0, 1, 2 (2e-8, 2e-7, 2e-6)
    ('warn_eta_min', 'above the starting lr of 3 distinct group(s) '
     '(layer ids [0, 1, 2])'),
    ('warn_end_beyond', 'end=40 but max_epochs is 30'),
])
def test_each_warning_fires_on_its_config(name, expected):
    tracks, length, _ = curves_of(f'tests/configs/{name}.py')
    messages = check_schedule(tracks, length)
    assert len(messages) == 1 and expected in messages[0], messages


# paths from the repository, wherever pytest runs from (a glob relative to
# the working directory found none from elsewhere and skipped in silence)
EXAMPLES = sorted(p.relative_to(REPO).as_posix()
                  for p in (REPO / 'configs').glob('*.py'))


def test_every_example_config_is_checked():
    assert len(EXAMPLES) >= 9 and 'configs/vit_digits.py' in EXAMPLES


@pytest.mark.parametrize('path', EXAMPLES)
def test_examples_raise_no_warning(path):
    tracks, length, _ = curves_of(path)
    assert check_schedule(tracks, length) == []


def test_csv_has_one_column_per_curve_named_by_its_groups(tmp_path):
    _, _, curves = curves_of('configs/vit_digits_layer_decay.py',
                             merge=False)
    write_csv(curves, str(tmp_path / 'lr.csv'))
    lines = (tmp_path / 'lr.csv').read_text().splitlines()
    # every group stepped alone: one column each
    assert lines[0] == 'iter,epoch,' + ','.join(f'group{g}'
                                                for g in range(12))
    assert len(lines) == 1 + 30 * EPOCH
    assert lines[EPOCH].startswith(f'{EPOCH - 1},{(EPOCH - 1) / EPOCH:.6g},')
    table = np.loadtxt(tmp_path / 'lr.csv', delimiter=',', skiprows=1)
    # ten significant digits: within half a unit in the 10th of each value
    np.testing.assert_allclose(table[:, 2:], curves.values, rtol=5e-10)
