"""tools/vis_lr.py end to end: PNG size, CSV values against mmengine's
schedulers stepped by hand, warnings, --help."""
import csv

import matplotlib.image as mpimg
import numpy as np
from conftest import run_tool
from test_analysis_curves import EPOCH, by_hand


def test_layer_decay_png_and_csv(tmp_path):
    out = tmp_path / 'lr.png'
    result = run_tool('tools/vis_lr.py', 'configs/vit_digits_layer_decay.py',
                      '--out', str(out), '--size', '640x360', '--log-y')
    image = mpimg.imread(out)
    assert image.shape[:2] == (360, 640)  # rows = height, columns = width
    assert image[..., :3].std() > 0.05  # curves drawn, not a blank canvas
    with open(tmp_path / 'lr.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ['iter', 'epoch', 'group0'] and len(rows[0]) == 14
    values = np.array(rows[1:], dtype=float)
    assert values.shape == (30 * EPOCH, 14)
    assert values[EPOCH, 1] == 1.0  # the epoch column
    # groups run top layer first: group g is at layer 5 - g // 2, whose
    # base lr is 2e-3 * 0.75 ** (5 - layer) = 2e-3 * 0.75 ** (g // 2)
    for group in range(12):
        np.testing.assert_allclose(values[:, 2 + group],
                                   by_hand(2e-3 * 0.75**(group // 2)),
                                   rtol=1e-9)
    assert 'WARNING' not in result.stdout
    assert 'layer 5 (groups 0,1)' in result.stdout  # the summary table
    assert 'one group at a time' not in result.stdout  # stepped as arrays


def test_plateau_config_steps_groups_one_by_one_and_says_so(tmp_path):
    # with layer decay: 6 distinct curves under ReduceLR
    result = run_tool('tools/vis_lr.py', 'configs/vit_digits_plateau.py',
                      '--metrics', '0.5,0.6,0.6,0.6,0.6', '--out',
                      str(tmp_path / 'p.png'), '--csv', 'none',
                      '--cfg-options',
                      'optim_wrapper.constructor='
                      'LayerDecayOptimWrapperConstructor',
                      'optim_wrapper.paramwise_cfg.layer_decay_rate=0.75')
    assert 'note: curves stepped one group at a time (ReduceLR compares ' \
        'or prints values' in result.stdout
    assert 'validations after iterations: 45, 90, 135' in result.stdout


def test_warning_and_plateau_note_printed(tmp_path):
    result = run_tool('tools/vis_lr.py', 'tests/configs/warn_eta_min.py',
                      '--out', str(tmp_path / 'x.png'), '--csv', 'none')
    assert 'WARNING: CosineAnnealingLR anneals to eta_min=1e-05' in \
        result.stdout
    assert not (tmp_path / 'x.csv').exists()


def test_help_explains_flags():
    text = run_tool('tools/vis_lr.py', '--help').stdout
    for flag in ('--metrics', '--iters-per-epoch', '--dataset-size',
                 '--param', '--log-y', '--size', '--cfg-options'):
        assert flag in text
