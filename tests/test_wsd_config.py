"""configs/vit_digits_wsd.py: trained (short) through tools/train.py and
resumed mid-cooldown, drawn by mmlr.analysis with layer decay, and a
cooldown longer than the run stopping tools/train.py with one line."""
import shutil

import numpy as np
import pytest

from conftest import (REPO, final_accuracy, read_scalars, tool_main,
                      train_in_process, user_error_line)
from mmlr.analysis import (build_tracks, check_schedule, simulate,
                           train_length)
from mmlr.config_build import build_model, build_optim_wrapper_of, load_config
from test_schedulers_cooldown import mmengine_warm_up, paper_cooldown

CONFIG = 'configs/vit_digits_wsd.py'
BASE_LR = 2e-3
FEW = 6  # batches an epoch; 3 epochs = 18 iterations
SHORT = [
    'train_cfg.max_epochs=3', f'train_dataloader.num_batch_per_epoch={FEW}',
    # half of the run: iterations 9 .. 17, so the checkpoint after epoch 2
    # (iteration 12) is mid-cooldown
    'param_scheduler.1.fraction=0.5',
    'model.drop_path_rate=0.0', 'model.proj_drop_rate=0.0',
    'model.attn_drop_rate=0.0', 'default_hooks.logger.interval=1',
    'default_hooks.checkpoint.interval=1',
    'default_hooks.checkpoint.max_keep_ckpts=-1'
]


def wsd_by_hand(n: int, iterations: int, warm_up: int, cooldown: int):
    """The config's schedule: mmlr.LinearLR from 1 % over ``warm_up``
    iterations (mmengine's numbers), hold, 1-sqrt cooldown to 0 over the
    last ``cooldown`` iterations (Hägele et al.)."""
    return mmengine_warm_up(n, 0.01, warm_up) * paper_cooldown(
        '1-sqrt', n, iterations, cooldown, 0.0)


def records_by_iteration(work_dir) -> dict:
    """{0-based iteration: training record} from the run's scalars."""
    return {r['iter'] - 1: r for r in read_scalars(work_dir) if 'loss' in r}


def test_wsd_config_trains_resumes_mid_cooldown_and_branches(tmp_path):
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    log = train_in_process(CONFIG, whole, *SHORT)
    records = records_by_iteration(whole)
    assert sorted(records) == list(range(18))
    expected = [BASE_LR * wsd_by_hand(n, 18, FEW, 9) for n in range(18)]
    for n in range(18):
        assert records[n]['lr'] == pytest.approx(expected[n], rel=1e-12), n
    assert records[8]['lr'] == BASE_LR  # the stable phase, untouched
    final_accuracy(log)  # the run validated (a wiring check: 18 iterations)

    # resume from the checkpoint after epoch 2, inside the cooldown
    part.mkdir()
    checkpoint = shutil.copy(whole / 'epoch_2.pth', part / 'epoch_2.pth')
    train_in_process(CONFIG, part, *SHORT, flags=('--resume', str(checkpoint)))
    resumed = records_by_iteration(part)
    assert sorted(resumed) == list(range(12, 18))
    for n in range(12, 18):
        assert resumed[n]['lr'] == records[n]['lr'], n
        assert resumed[n]['loss'] == pytest.approx(records[n]['loss'],
                                                   rel=1e-5), n

    # branch a cooldown of one epoch off the stable checkpoint after epoch 1
    # (iteration 6): the run ends an epoch later, the cooldown is
    # iterations 6 .. 11 (paper: N = 12, N_c = 6)
    branch = tmp_path / 'branch'
    branch.mkdir()
    checkpoint = shutil.copy(whole / 'epoch_1.pth', branch / 'epoch_1.pth')
    train_in_process(CONFIG, branch, *SHORT, 'train_cfg.max_epochs=2',
                     'param_scheduler.1.fraction=None',
                     'param_scheduler.1.length=1',
                     flags=('--resume', str(checkpoint)))
    branched = records_by_iteration(branch)
    assert sorted(branched) == list(range(6, 12))
    for n in range(6, 12):
        assert branched[n]['lr'] == pytest.approx(
            BASE_LR * paper_cooldown('1-sqrt', n, 12, 6, 0.0), rel=1e-12), n


def test_vis_lr_draws_every_layer_on_the_wsd_schedule():
    # the config with MAE-style layer decay: each of the 6 layer ids keeps
    # its lr * 0.75 ** (5 - d) through the cooldown, to the last iteration
    cfg = load_config(str(REPO / CONFIG))
    cfg.merge_from_dict(dict(optim_wrapper=dict(
        constructor='LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.75))))
    model, _ = build_model(cfg)
    length = train_length(cfg)
    assert (length.epoch_length, length.max_iters) == (45, 1350)
    tracks = build_tracks(build_optim_wrapper_of(cfg, model),
                          cfg.param_scheduler, length)
    assert check_schedule(tracks, length) == []  # the hold is no gap
    curves = simulate(tracks, length)
    # warm-up over epoch 0 (45 iterations), cooldown over the last 20 %
    # of 1,350 iterations: 270
    schedule = np.array([wsd_by_hand(n, 1350, 45, 270)
                         for n in range(1350)])
    assert curves.values.shape[1] == 6
    for curve, layer in enumerate(curves.layer_ids):
        np.testing.assert_allclose(
            curves.values[:, curve],
            BASE_LR * 0.75 ** (5 - layer) * schedule, rtol=1e-12, atol=0)
    assert curves.values[-1].min() > 0  # the floor 0 comes after the run


def test_a_cooldown_longer_than_the_run_stops_training_with_one_line(
        tmp_path, capsys):
    line = user_error_line(
        capsys, tool_main('train'), CONFIG, '--work-dir', str(tmp_path),
        '--cfg-options', 'param_scheduler.1.fraction=None',
        'param_scheduler.1.length=40', 'experiment_name=wsd_too_long')
    assert line == ('error: CooldownLR: length=40 epochs is longer than the '
                    'run: end=30 (the end of training unless end is set), so '
                    'the cooldown would begin at -10')
