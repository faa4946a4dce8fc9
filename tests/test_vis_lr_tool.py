"""tools/vis_lr.py end to end: PNG size, CSV values against mmengine's
schedulers stepped by hand, warnings, --help."""
import csv

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import pytest
from conftest import REPO, tool_module, user_error_line
from test_analysis_curves import EPOCH, by_hand

from mmlr.analysis import train_length
from mmlr.config_build import build_model, build_optim_wrapper_of, load_config

vis_lr = tool_module('vis_lr')
vis_lr_main = vis_lr.main
metrics_coverage = vis_lr.metrics_coverage
DIGITS = str(REPO / 'configs/vit_digits.py')
MAE = str(REPO / 'configs/vit_base_mae_finetune.py')


def curve_pixels(image: np.ndarray, colour) -> int:
    """Pixels within a small distance of a curve's RGB colour (the axes,
    text and grid are grey, so a canvas without curves has none)."""
    distance = np.abs(image[..., :3] - np.asarray(colour[:3])).max(axis=-1)
    return int((distance < 0.05).sum())


def test_layer_decay_png_and_csv(tmp_path, capsys):
    out = tmp_path / 'lr.png'
    vis_lr_main([f'{REPO}/configs/vit_digits_layer_decay.py', '--out',
                 str(out), '--size', '640x360', '--log-y'])
    stdout = capsys.readouterr().out
    image = mpimg.imread(out)
    assert image.shape[:2] == (360, 640)  # rows = height, columns = width
    # the curves are drawn in viridis by layer depth: the top layer (5 of
    # 5) at 0.9 of the map, the bottom one (0) at its start
    viridis = matplotlib.colormaps['viridis']
    assert curve_pixels(image, viridis(0.9)) > 100
    assert curve_pixels(image, viridis(0.0)) > 100
    with open(tmp_path / 'lr.csv') as f:
        rows = list(csv.reader(f))
    # one column per distinct curve: a decayed and an undecayed group per
    # layer share one, top layer first
    assert rows[0] == ['iter', 'epoch'] + [
        f'group{2 * c}+group{2 * c + 1}' for c in range(6)]
    values = np.array(rows[1:], dtype=float)
    assert values.shape == (30 * EPOCH, 8)
    assert values[EPOCH, 1] == 1.0  # the epoch column
    # curve c holds layer 5 - c, whose base lr is
    # 2e-3 * 0.75 ** (5 - layer) = 2e-3 * 0.75 ** c
    for curve in range(6):
        np.testing.assert_allclose(values[:, 2 + curve],
                                   by_hand(2e-3 * 0.75**curve), rtol=1e-9)
    assert 'WARNING' not in stdout
    assert '12 groups, 6 distinct curves' in stdout
    assert 'layer 5 (groups 0,1)' in stdout  # the summary table


def test_plateau_with_layer_decay_feeds_every_curve(tmp_path, capsys):
    # with layer decay: 6 distinct curves under ReduceLR
    vis_lr_main([f'{REPO}/configs/vit_digits_plateau.py', '--metrics',
                 '0.5,0.6,0.6,0.6,0.6', '--out', str(tmp_path / 'p.png'),
                 '--csv', str(tmp_path / 'p.csv'), '--cfg-options',
                 'optim_wrapper.constructor='
                 'LayerDecayOptimWrapperConstructor',
                 'optim_wrapper.paramwise_cfg.layer_decay_rate=0.75'])
    stdout = capsys.readouterr().out
    assert 'validations after iterations: 45, 90, 135' in stdout
    values = np.loadtxt(tmp_path / 'p.csv', delimiter=',', skiprows=1)
    # the warm-up ends after epoch 0; patience 2: the 3rd value that does
    # not improve on 0.6 (after epoch 5) halves every curve from there on
    assert values.shape[1] == 2 + 6
    np.testing.assert_array_equal(values[5 * EPOCH - 1, 2:],
                                  values[EPOCH, 2:])
    np.testing.assert_allclose(values[5 * EPOCH, 2:] / values[EPOCH, 2:],
                               0.5, rtol=1e-12)


def test_warning_and_plateau_note_printed(tmp_path, capsys):
    vis_lr_main([f'{REPO}/tests/configs/warn_eta_min.py', '--out',
                 str(tmp_path / 'x.png'), '--csv', 'none'])
    assert 'WARNING: CosineAnnealingLR anneals to eta_min=1e-05' in \
        capsys.readouterr().out
    assert not (tmp_path / 'x.csv').exists()


def test_help_explains_flags(capsys):
    with pytest.raises(SystemExit) as stopped:
        vis_lr_main(['--help'])
    assert stopped.value.code == 0
    text = capsys.readouterr().out
    for flag in ('--metrics', '--iters-per-epoch', '--dataset-size',
                 '--param', '--log-y', '--size', '--cfg-options'):
        assert flag in text


def test_mae_example_runs_as_listed_with_its_recipe_data_size(
        capsys, tmp_path):
    # README lists `python tools/vis_lr.py configs/vit_base_mae_finetune.py`
    # with no flag. ImageNet-1k's 1,281,167 images on 8 GPUs: each takes
    # ceil(1281167 / 8) = 160,146 per epoch, in batches of 128:
    # ceil(160146 / 128) = 1,252 iterations per epoch.
    vis_lr_main([MAE, '--out', str(tmp_path / 'mae.png'), '--csv', 'none',
                 '--no-progress'])
    out = capsys.readouterr().out
    assert out.startswith('vit_base_mae_finetune.py: 100 epochs x 1252 '
                          'iterations; model on meta; 28 groups')
    assert (tmp_path / 'mae.png').exists()


def test_flags_override_the_configs_data_size():
    cfg = load_config(MAE)
    # 16 GPUs: ceil(1281167 / 16) = 80,073 images, ceil(80073 / 128) = 626
    assert train_length(cfg, world_size=16).epoch_length == 626
    assert train_length(cfg, iters_per_epoch=10).max_iters == 1000
    # 1000 images in batches of 10 on the config's 8 GPUs:
    # ceil(1000 / 8) = 125 images, ceil(125 / 10) = 13 batches
    assert train_length(cfg, dataset_size=1000,
                        batch_size=10).epoch_length == 13


@pytest.mark.parametrize('flags, message', [
    # --world-size 0 was blamed on the data set (ZeroDivisionError)
    (['--world-size', '0'], 'argument --world-size: must be at least 1, '
     'got 0'),
    # --batch-size 0 was replaced by the config's batch size without a word
    (['--batch-size', '0'], 'argument --batch-size: must be at least 1, '
     'got 0'),
    (['--iters-per-epoch', '-3'], 'argument --iters-per-epoch: must be at '
     'least 1, got -3'),
    (['--dataset-size', 'many'], "argument --dataset-size: expected a whole "
     "number, got 'many'"),
    # matplotlib died with bad_alloc on a 100000 x 100000 canvas
    (['--size', '100000x100000'], '--size: each side must be 50 to 10000 '
     'pixels, got 100000x100000'),
    (['--size', '20000x600'], '--size: each side must be 50 to 10000 '
     'pixels, got 20000x600'),
    (['--size', 'large'], "--size takes WIDTHxHEIGHT in pixels, got "
     "'large'"),
])
def test_bad_flags_are_one_line(capsys, tmp_path, flags, message):
    line = user_error_line(capsys, vis_lr_main, DIGITS, '--out',
                           str(tmp_path / 'x.png'), '--csv', 'none', *flags)
    assert message in line


def test_config_that_does_not_load_is_one_line(capsys, tmp_path):
    broken = tmp_path / 'broken.py'
    broken.write_text('train_cfg = dict(max_epochs=3\n')
    line = user_error_line(capsys, vis_lr_main, str(broken))
    assert line.startswith(f'error: config {broken}: SyntaxError: ')


def test_bad_config_data_size_names_the_key(capsys, tmp_path):
    line = user_error_line(capsys, vis_lr_main, MAE, '--out',
                           str(tmp_path / 'x.png'), '--cfg-options',
                           'vis_lr_cfg.world_size=0')
    assert line == ('error: vis_lr_cfg.world_size must be a positive '
                    'integer, got 0')


@pytest.mark.parametrize('in_file', [False, True])
def test_fewer_metrics_than_validations_says_how_many_and_what_was_assumed(
        capsys, tmp_path, in_file):
    # the plateau example validates after each of its 30 epochs of 45
    # iterations: 2 values cover the first two, the 28 from the one after
    # iteration 3 * 45 = 135 on get none; a file of them reads alike
    metrics = '0.5,0.6'
    if in_file:
        metrics = tmp_path / 'metrics.txt'
        metrics.write_text('0.5\n0.6\n')
    vis_lr_main([str(REPO / 'configs/vit_digits_plateau.py'), '--metrics',
                 str(metrics), '--out', str(tmp_path / 'p.png'), '--csv',
                 'none'])
    assert ('note: --metrics has 2 values for 30 validations: the last 28 '
            '(from the one after iteration 135 on) got no value, so plateau '
            'schedulers kept their lr there') in capsys.readouterr().out


def test_metrics_coverage_counts_both_ways():
    assert metrics_coverage([0.1, 0.2], [10, 20]) is None
    assert metrics_coverage([0.1, 0.2, 0.3], [10]) == (
        '--metrics has 3 values for 1 validations: the last 2 were not used')
    assert 'the last 1 (from the one after iteration 30 on)' in \
        metrics_coverage([0.1, 0.2], [10, 20, 30])


@pytest.mark.parametrize('metrics, message', [
    ('0.5,high', "--metrics takes numbers separated by commas or spaces"),
    (' , ', '--metrics is empty')])
def test_metrics_that_are_not_numbers_are_one_line(capsys, metrics, message):
    line = user_error_line(capsys, vis_lr_main,
                           str(REPO / 'configs/vit_digits_plateau.py'),
                           '--metrics', metrics)
    assert message in line


def csv_of(tmp_path, *flags: str) -> tuple[list, np.ndarray]:
    """vis_lr's CSV for the layer-decay example: header, values."""
    out = tmp_path / 'lr.csv'
    vis_lr_main([f'{REPO}/configs/vit_digits_layer_decay.py', '--out',
                 str(tmp_path / 'lr.png'), '--csv', str(out), *flags])
    with open(out) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


def test_all_groups_gives_every_group_its_own_column(tmp_path):
    header, values = csv_of(tmp_path, '--all-groups')
    assert header == ['iter', 'epoch'] + [f'group{g}' for g in range(12)]
    # groups 2c and 2c+1 are layer 5 - c (decayed and not): both at
    # 2e-3 * 0.75 ** c, on the demo's warm-up + cosine
    for group in range(12):
        np.testing.assert_allclose(values[:, 2 + group],
                                   by_hand(2e-3 * 0.75**(group // 2)),
                                   rtol=1e-9)


def test_param_weight_decay_and_momentum(tmp_path):
    # AdamW(weight_decay=0.05, betas=(0.9, 0.999)); layer decay gives norms,
    # biases and tokens weight decay 0 (flat_decay_mult=0.0), the rest
    # 0.05, and no scheduler moves either value
    cfg = load_config(str(REPO / 'configs/vit_digits_layer_decay.py'))
    model, _ = build_model(cfg)
    decays = [g['weight_decay'] for g in
              build_optim_wrapper_of(cfg, model).optimizer.param_groups]
    header, values = csv_of(tmp_path, '--param', 'weight_decay')
    for column, name in enumerate(header[2:]):
        members = {decays[int(g.removeprefix('group'))]
                   for g in name.split('+')}
        assert len(members) == 1
        assert (values[:, 2 + column] == members.pop()).all()
    assert sorted(set(decays)) == [0.0, 0.05]
    header, values = csv_of(tmp_path, '--param', 'momentum')
    assert header[2] == '+'.join(f'group{g}' for g in range(12))
    assert (values[:, 2] == 0.9).all()


def test_mae_vit_h_recipe_warns_of_its_eta_min(tmp_path, capsys):
    # mmpretrain's MAE ViT-H fine-tune: lr 4e-3, layer decay 0.75 over 32
    # blocks (ids 0..33), cosine to eta_min 1e-6. Layer d starts at
    # 4e-3 * 0.75 ** (33 - d), below 1e-6 when 0.75 ** (33 - d) < 2.5e-4,
    # i.e. 33 - d >= 29: layers 0-4, the lowest at 4e-3 * 0.75 ** 33.
    # (The ViT-B config with 32 blocks: the width does not change an lr.)
    vis_lr_main([MAE, '--iters-per-epoch', '1', '--csv', 'none', '--out',
                 str(tmp_path / 'h.png'), '--cfg-options', 'model.depth=32',
                 'optim_wrapper.optimizer.lr=4e-3',
                 'optim_wrapper.paramwise_cfg.layer_decay_rate=0.75'])
    lowest = 4e-3 * 0.75**33
    assert ('WARNING: CosineAnnealingLR anneals to eta_min=1e-06, above '
            'the starting lr of 5 distinct group(s) (layer ids [0, 1, 2, 3, '
            f'4]), lowest {lowest:.3g}: their lr will rise; use '
            'eta_min_ratio, or a smaller eta_min') in capsys.readouterr().out
