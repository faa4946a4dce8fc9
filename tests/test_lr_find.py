"""tools/lr_find.py and mmlr.lr_find: the lr range test on the config's own
model, data and optim wrapper."""
import csv
import hashlib
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from conftest import REPO, tool_main, user_error_line
from mmlr.launch import prepare_config
from mmlr.lr_find import (RangeTestResult, SmoothedLoss, exponential_lrs,
                          run_range_test, suggest_lr, training_parts)

lr_find_main = tool_main('lr_find')
TINY = str(REPO / 'tests' / 'configs' / 'lr_find_tiny.py')


def test_exponential_lrs_by_hand():
    # 1e-4 to 1e-1 in 4 iterations: a factor of 10 per iteration.
    assert exponential_lrs(1e-4, 1e-1, 4) == pytest.approx(
        [1e-4, 1e-3, 1e-2, 1e-1], rel=1e-12)
    # 7 iterations over 3 decades: half a decade each.
    assert exponential_lrs(1e-4, 1e-1, 7) == pytest.approx(
        [10**(-4 + i / 2) for i in range(7)], rel=1e-12)
    with pytest.raises(ValueError, match='end_lr must be above start_lr'):
        exponential_lrs(1e-2, 1e-3, 10)


def test_smoothed_loss_worked_example_and_divergence():
    smoother = SmoothedLoss(beta=0.5, diverge_factor=2.0)
    # average 0.5 * 0 + 0.5 * 4 = 2, debiased by 1 - 0.5: 4
    assert smoother.update(4.0) == (pytest.approx(4.0), None)
    # average 0.5 * 2 + 0.5 * 1 = 1.5, debiased by 1 - 0.25: 2
    assert smoother.update(1.0) == (pytest.approx(2.0), None)
    # average 0.5 * 1.5 + 0.5 * 9 = 5.25, / 0.875 = 6 > 2 x 2: diverged
    smoothed, stop = smoother.update(9.0)
    assert smoothed == pytest.approx(6.0)
    assert 'exceeds 2 x its minimum 2' in stop
    assert SmoothedLoss(0.98, None).update(math.nan)[1] == 'the loss is nan'
    assert SmoothedLoss(0.98, None).update(1e30)[1] is None  # never stops


def test_suggestion_is_a_tenth_of_the_minimum_after_the_first_tenth():
    # log10(lr) from -5 to 0 in steps of 0.1. The loss falls as
    # -tanh(2 (x + 3)), fastest at x = -3 (slope -2 per decade), and rises
    # as 4 (x + 1)^2 beyond x = -1, where the tanh is flat (its slope there
    # is -2 / cosh(4)^2 = -0.003): the minimum is at x = -1, index 40.
    x = np.linspace(-5, 0, 51)
    loss = 2 - np.tanh(2 * (x + 3)) + np.where(x > -1, (x + 1)**2, 0) * 4
    # A dip in the first tenth (indices 0-4) is the average's start: ignored.
    loss[2] = -10
    result = RangeTestResult(lrs=list(10**x), smoothed=list(loss),
                             losses=list(loss), planned_iters=51)
    suggestion = suggest_lr(result)
    assert suggestion.minimum_index == 40
    assert suggestion.minimum_lr == pytest.approx(0.1)
    assert suggestion.lr == pytest.approx(0.01)
    assert suggestion.steepest_index == 20
    assert suggestion.steepest_lr == pytest.approx(1e-3)
    # A loss that only rises: the minimum is the first point after the
    # skipped tenth, and no descent precedes it.
    rising = RangeTestResult(lrs=list(10**x), smoothed=list(x),
                             losses=list(x), planned_iters=51)
    assert suggest_lr(rising).minimum_index == 5
    assert suggest_lr(rising).steepest_lr is None
    # A NaN ends the usable points.
    stopped = RangeTestResult(lrs=[1e-3, 1e-2, 1e-1],
                              smoothed=[2.0, 1.0, math.nan],
                              losses=[2.0, 1.0, math.nan], planned_iters=3)
    assert suggest_lr(stopped).minimum_lr == pytest.approx(1e-2)


def test_every_group_steps_at_the_exponential_lr_times_its_ratio():
    cfg = prepare_config(TINY)
    lrs = exponential_lrs(1e-4, 1e-1, 12)
    with training_parts(cfg, 'lr_find_tiny.py') as parts:
        optimizer = parts.optim_wrapper.optimizer
        built_lrs = [group['lr'] for group in optimizer.param_groups]
        before = {k: v.clone() for k, v in parts.model.state_dict().items()}
        stepped, moved = [], []

        def record(opt, args, kwargs):
            stepped.append([group['lr'] for group in opt.param_groups])
            moved.append(any(not torch.equal(v, before[k]) for k, v in
                             parts.model.state_dict().items()))

        handle = optimizer.register_step_pre_hook(record)
        result = run_range_test(parts.model, parts.optim_wrapper,
                                parts.dataloader, lrs, diverge_factor=None)
        handle.remove()
        after = parts.model.state_dict()
        assert all(torch.equal(after[k], before[k]) for k in before)
        assert optimizer.state_dict()['state'] == {}
        assert [group['lr'] for group in optimizer.param_groups] == built_lrs

    # The configured lr is 2e-3; layer decay 0.75 over 3 layer ids gives
    # the head 1, the block 0.75 and the embedding 0.75 ** 2 of it.
    ratios = [lr / 2e-3 for lr in built_lrs]
    assert sorted(set(round(r, 12) for r in ratios)) == pytest.approx(
        [0.5625, 0.75, 1.0])
    assert len(stepped) == 12 and moved[-1]  # it did train in between
    for i, group_lrs in enumerate(stepped):
        hand = 1e-4 * 1000**(i / 11)
        assert group_lrs == pytest.approx([hand * r for r in ratios],
                                          rel=1e-12)
    assert result.lrs == pytest.approx(lrs, rel=0)
    assert result.stop_reason is None and len(result.losses) == 12


def test_parts_start_from_load_from_and_accumulation_steps_per_iteration(
        tmp_path):
    weights = tmp_path / 'start.pth'
    with training_parts(prepare_config(TINY)) as parts:
        state = parts.model.state_dict()
        state['backbone.head.weight'].fill_(0.5)
        torch.save({'state_dict': state}, weights)
    cfg = prepare_config(TINY, cfg_options={
        'load_from': str(weights), 'optim_wrapper.accumulative_counts': 2})
    with training_parts(cfg) as parts:
        head = parts.model.state_dict()['backbone.head.weight']
        assert (head == 0.5).all()
        steps, forwards = [], []
        parts.optim_wrapper.optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: steps.append(opt.param_groups[0]['lr']))
        parts.model.register_forward_hook(
            lambda module, args, output: forwards.append(1))
        result = run_range_test(parts.model, parts.optim_wrapper,
                                parts.dataloader, [1e-3, 1e-2, 1e-1],
                                diverge_factor=None)
    # Two batches per iteration, one optimizer step at each lr.
    assert len(forwards) == 6 and steps == pytest.approx([1e-3, 1e-2, 1e-1])
    assert len(result.losses) == 3


def _pixels_of(png, rgb, tol=0.08):
    """Where the picture has colour rgb (the background is white)."""
    image = imread(png)[..., :3]
    return (np.abs(image - np.array(rgb) / 255) < tol).all(axis=-1)


def test_tool_stops_on_divergence_and_leaves_weights_and_work_dir(
        tmp_path, capsys):
    # Weights to start from (the head's set to 0.5): load_from is read,
    # never written.
    weights = tmp_path / 'start.pth'
    with training_parts(prepare_config(TINY)) as parts:
        state = parts.model.state_dict()
        state['backbone.head.weight'].fill_(0.5)
        torch.save({'state_dict': state}, weights)
    runner_dirs = set(Path(tempfile.gettempdir()).glob('mmlr_lr_find_*'))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    work_dir = tmp_path / 'work_dir'
    out = tmp_path / 'find' / 'tiny.png'
    capsys.readouterr()
    # AdamW at lr 100 moves every weight by about 100 per step: the loss
    # cannot stay within 4x its minimum.
    lr_find_main([TINY, '--start-lr', '1e-4', '--end-lr', '100',
                  '--num-iters', '40', '--smoothing', '0.5', '--out',
                  str(out), '--cfg-options', f'work_dir={work_dir}',
                  f'load_from={weights}'])
    printed = capsys.readouterr().out
    with open(out.with_suffix('.csv')) as f:
        rows = list(csv.DictReader(f))
    smoothed = [float(row['smoothed_loss']) for row in rows]
    assert 'stopped early' in printed and len(rows) < 40
    assert not (math.isfinite(smoothed[-1])
                and smoothed[-1] <= 4 * min(smoothed[:-1]))
    assert float(rows[-1]['lr']) == pytest.approx(
        1e-4 * 1e6**((len(rows) - 1) / 39))

    # A tenth of the lr at the lowest smoothed loss after the first 4
    # iterations, to 2 significant digits.
    lowest = 4 + int(np.argmin(smoothed[4:]))
    suggested = re.search(r'suggested lr: (\S+)', printed).group(1)
    assert float(suggested) == float(
        f'{float(rows[lowest]["lr"]) / 10:.2g}')
    assert f'optim_wrapper = dict(optimizer=dict(lr={suggested}))' in printed
    assert f'--cfg-options optim_wrapper.optimizer.lr={suggested}' in printed
    # Nothing written but the picture and the CSV; the weights unchanged.
    assert not work_dir.exists()
    assert sorted(p.name for p in tmp_path.rglob('*') if p.is_file()) == \
        ['start.pth', 'tiny.csv', 'tiny.png']
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest
    assert set(Path(tempfile.gettempdir()).glob('mmlr_lr_find_*')) == \
        runner_dirs

    # The smoothed curve (matplotlib's first colour) is drawn across most
    # of the picture's width; the suggestion is a red vertical line, in
    # the column of its lr on the log axis (the plot spans the tested lrs).
    curve = _pixels_of(out, (31, 119, 180))
    assert curve.any(axis=0).sum() > curve.shape[1] / 2
    red = _pixels_of(out, (214, 39, 40))
    line_rows = red.sum(axis=0)
    assert line_rows.max() > red.shape[0] / 3


def test_config_without_training_data_is_one_line(tmp_path, capsys):
    config = tmp_path / 'no_data.py'
    config.write_text(
        "custom_imports = dict(imports=['mmlr'])\n"
        "model = dict(type='mmlr.DigitsViT', embed_dim=16, depth=1)\n"
        "optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))\n")
    line = user_error_line(capsys, lr_find_main, str(config), '--out',
                           str(tmp_path / 'x.png'))
    assert line.startswith('error: no_data.py has no train_dataloader:')
    assert list(tmp_path.iterdir()) == [config]


@pytest.mark.parametrize('key', ['train_cfg', 'optim_wrapper'])
def test_config_without_a_training_key_is_one_line(tmp_path, capsys, key):
    config = tmp_path / 'no_key.py'
    config.write_text(f"_base_ = [{TINY!r}]\n{key} = None\n")
    line = user_error_line(capsys, lr_find_main, str(config), '--out',
                           str(tmp_path / 'x.png'))
    assert line.startswith(f'error: no_key.py has no {key}:')


def test_diverge_factor_zero_never_stops_early(tmp_path, capsys):
    # lrs from 1e-4 to 10 over 30 iterations: the default factor 4 stops
    # the test early; with 0 every iteration runs
    args = [TINY, '--start-lr', '1e-4', '--end-lr', '10', '--num-iters',
            '30', '--smoothing', '0.5', '--out', str(tmp_path / 'x.png')]
    lengths = []
    for extra in ([], ['--diverge-factor', '0']):
        lr_find_main(args + extra)
        with open(tmp_path / 'x.csv') as f:
            lengths.append(len(list(csv.DictReader(f))))
    assert lengths[0] < 30
    assert lengths[1] == 30
    capsys.readouterr()


def test_help_explains_flags(capsys):
    with pytest.raises(SystemExit) as stopped:
        lr_find_main(['--help'])
    text = capsys.readouterr().out
    assert stopped.value.code == 0
    for flag in ('--start-lr', '--end-lr', '--num-iters', '--smoothing',
                 '--diverge-factor', '--out', '--csv', '--cfg-options',
                 '--debug', 'a tenth of the lr at the lowest smoothed loss'):
        assert flag in text


@pytest.mark.parametrize('flags, message', [
    (['--start-lr', '1', '--end-lr', '0.1'], '--end-lr (0.1) must be above'),
    (['--num-iters', '1'], '--num-iters must be at least 2'),
    (['--diverge-factor', '0.5'], '--diverge-factor must be above 1'),
    (['--smoothing', '1'], '--smoothing must be in [0, 1)'),
])
def test_bad_flags_are_one_line(capsys, flags, message):
    line = user_error_line(capsys, lr_find_main, TINY, *flags)
    assert message in line
