"""The two GroupSelect example configs trained end to end (short: 6 batches
an epoch), in-process and once in 2 processes, with the lrs every layer
got and the weights the staged backbone kept."""
import csv
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import mmlr  # noqa: F401  (weights_only loading of mmengine checkpoints)
from mmlr.analysis import build_tracks, check_schedule, train_length
from mmlr.config_build import build_model, build_optim_wrapper_of, load_config
from conftest import (REPO, read_scalars, tool_main, train_in_process,
                      user_error_line)
from test_distributed import run_dist

STAGED = 'configs/vit_digits_staged_finetune.py'
STEP_POLY = 'configs/vit_digits_step_backbone_poly_head.py'
BATCHES = 6  # an epoch
SHORT = [
    f'train_dataloader.num_batch_per_epoch={BATCHES}',
    'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1',
    'default_hooks.checkpoint.max_keep_ckpts=-1'
]
HEAD_LAYER = 5  # 4 blocks: stem 0, blocks 1-4, head 5


def layer_lrs(work_dir) -> list[list[float]]:
    """lr of layer ids 0..5 at every iteration, in order."""
    records = [r for r in read_scalars(work_dir) if 'lr_layer_0' in r]
    assert [r['iter'] for r in records] == list(
        range(records[0]['iter'], records[0]['iter'] + len(records)))
    return [[r[f'lr_layer_{k}'] for k in range(6)] for r in records]


def staged_lr(layer: int, iteration: int) -> float:
    """The staged config by hand: layer-decayed lr 2e-3 * 0.75 ** (5 - k);
    the backbone (k < 5) at 0 in epoch 0, then times (i - 6) / 5 over epoch
    1 (mmlr.LinearLR from 0 over iterations 6..11), then 1; the cosine from
    epoch 2 holds its first epoch at the start value."""
    base = 2e-3 * 0.75**(HEAD_LAYER - layer)
    if layer == HEAD_LAYER or iteration >= 2 * BATCHES:
        return base
    if iteration < BATCHES:
        return 0.0
    return base * (iteration - BATCHES) / (BATCHES - 1)


@pytest.fixture
def initial_weights(tmp_path):
    """The digits ViT's initial weights as a checkpoint for load_from, so a
    test can tell which weights training moved."""
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(REPO / STAGED).model)
    path = tmp_path / 'initial.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def assert_backbone_kept_head_moved(initial, checkpoint) -> None:
    before = torch.load(initial, weights_only=True)['state_dict']
    after = torch.load(checkpoint, weights_only=True)['state_dict']
    moved = sorted(k for k in before if not torch.equal(before[k], after[k]))
    # AdamW at lr 0 changes nothing, weight decay included
    assert moved == ['backbone.head.bias', 'backbone.head.weight']


def test_staged_config_holds_then_warms_the_backbone_and_resumes(
        tmp_path, initial_weights):
    work_dir = tmp_path / 'run'
    train_in_process(STAGED, work_dir, *SHORT, 'train_cfg.max_epochs=3',
                     f'load_from={initial_weights}')
    lrs = layer_lrs(work_dir)
    assert len(lrs) == 3 * BATCHES
    for i, row in enumerate(lrs):
        assert row == pytest.approx(
            [staged_lr(k, i) for k in range(6)], rel=1e-12, abs=0), i
    assert_backbone_kept_head_moved(initial_weights, work_dir / 'epoch_1.pth')

    # Resumed with one more epoch: the cosine's default end grows, so the
    # resume hook replays the schedule (GroupSelect included) for the new
    # config; epoch 3 runs at the cosine's midpoint for every layer.
    log = train_in_process(STAGED, work_dir, *SHORT, 'train_cfg.max_epochs=4',
                           flags=('--resume', ))
    assert 'resumed epoch: 3' in log
    assert 'Resume: following the config' in log
    eta_min, half = 1e-5, (1 + math.cos(math.pi / 2)) / 2
    for row in layer_lrs(work_dir)[3 * BATCHES:]:
        assert row == pytest.approx([
            eta_min + (2e-3 * 0.75**(HEAD_LAYER - k) - eta_min) * half
            for k in range(6)
        ], rel=1e-12)


def test_step_backbone_poly_head_config(tmp_path):
    # milestone moved from epoch 20 to 1 so that 2 short epochs show it
    train_in_process(STEP_POLY, tmp_path, *SHORT, 'train_cfg.max_epochs=2',
                     'param_scheduler.0.milestones=[1]')
    lrs = layer_lrs(tmp_path)
    assert len(lrs) == 2 * BATCHES
    for i, row in enumerate(lrs):
        # mmengine's PolyLR over iterations [0, 12): total_iters = 11,
        # lr * (1 - i / 11) ** power with power 1
        assert row[HEAD_LAYER] == pytest.approx(2e-3 * (1 - i / 11),
                                                rel=1e-12)
        backbone = 2e-3 if i < BATCHES else 2e-4  # x gamma at epoch 1
        assert row[:HEAD_LAYER] == pytest.approx([backbone] * 5, rel=1e-12)


def test_staged_config_in_two_processes(tmp_path, initial_weights):
    output = run_dist(
        STAGED, '--work-dir', str(tmp_path), '--cfg-options',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=-1', 'train_cfg.max_epochs=3',
        f'train_dataloader.num_batch_per_epoch={BATCHES}',
        f'load_from={initial_weights}')
    assert 'Distributed training: True' in output
    assert f'Epoch(train) [3][{BATCHES}/{BATCHES}]' in output
    lrs = layer_lrs(tmp_path)
    assert len(lrs) == 3 * BATCHES
    for i, row in enumerate(lrs):
        assert row == pytest.approx(
            [staged_lr(k, i) for k in range(6)], rel=1e-12, abs=0), i
    assert_backbone_kept_head_moved(initial_weights, tmp_path / 'epoch_1.pth')


def test_a_selection_matching_nothing_stops_training_with_one_line(
        tmp_path, capsys):
    line = user_error_line(
        capsys, tool_main('train'), STEP_POLY, '--work-dir', str(tmp_path),
        '--cfg-options', 'param_scheduler.1.groups.layer_ids=[7,9]',
        'experiment_name=group_select_no_match')
    assert line.startswith(
        "error: param_scheduler GroupSelect: groups={'role': 'head', "
        "'layer_ids': [7, 9]} matches no optimizer group (12 groups; layer "
        'ids 0 to 5; e.g. backbone.head.weight')


def test_vis_lr_draws_each_selected_groups_own_curve(tmp_path, capsys):
    tool_main('vis_lr')([str(REPO / STEP_POLY), '--out',
                         str(tmp_path / 'lr.png')])
    stdout = capsys.readouterr().out
    assert '12 groups, 12 distinct curves' in stdout
    # MultiStepLR and PolyLR act on other groups: no overlap warning
    assert 'WARNING' not in stdout
    with open(tmp_path / 'lr.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['iter', 'epoch'] + [f'group{g}' for g in range(12)]
    iters = 30 * 45  # 1,437 digits in batches of 32: 45 an epoch
    assert len(rows) == 1 + iters
    for i, row in enumerate(rows[1:]):
        values = [float(v) for v in row[2:]]
        # head (groups 0, 1): PolyLR over all iterations, total_iters 1349
        assert values[:2] == pytest.approx([2e-3 * (1 - i / 1349)] * 2,
                                           rel=1e-5, abs=1e-12), i
        # backbone: x0.1 after epochs 20 and 27
        backbone = 2e-3 * 0.1**((i >= 20 * 45) + (i >= 27 * 45))
        assert values[2:] == pytest.approx([backbone] * 10, rel=1e-5), i


def test_vis_lr_eta_min_warning_names_the_selected_layers():
    cfg = load_config(str(REPO / STAGED))
    # the cosine for the backbone only, annealing to 1e-3: above the start
    # of layers 0-2 (2e-3 * 0.75 ** 5, ** 4, ** 3 = 4.7e-4, 6.3e-4, 8.4e-4)
    cfg.param_scheduler[2] = dict(
        type='GroupSelect', groups=dict(role='backbone'),
        scheduler='CosineAnnealingLR', begin=2, by_epoch=True, eta_min=1e-3)
    length = train_length(cfg)
    tracks = build_tracks(build_optim_wrapper_of(cfg, build_model(cfg)[0]),
                          cfg.param_scheduler, length)
    [message] = check_schedule(tracks, length)
    assert message.startswith(
        "CosineAnnealingLR(role='backbone') anneals to eta_min=0.001, above "
        'the starting lr of 6 distinct group(s) (layer ids [0, 1, 2])')


def test_names_select_with_mmengines_own_constructor_in_tools_train(
        tmp_path):
    # vit_digits.py: mmengine's DefaultOptimWrapperConstructor (with a
    # paramwise_cfg: one group per tensor), which records no names;
    # tools/train.py does. Its warm-up (mmengine's LinearLR from 1 % over
    # epoch 0) for the head only.
    train_in_process('configs/vit_digits.py', tmp_path,
                     'optim_wrapper.paramwise_cfg.norm_decay_mult=0.0',
                     'param_scheduler.0.type=GroupSelect',
                     'param_scheduler.0.groups.names=head',
                     'param_scheduler.0.scheduler=LinearLR',
                     'train_cfg.max_epochs=2',
                     'default_hooks.logger.interval=1',
                     'train_dataloader.num_batch_per_epoch=3')
    state = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)
    selection = state['param_schedulers'][0]['selection']
    # timm's ViT lists head.weight and head.bias last of its 56 tensors
    assert selection['indices'] == [54, 55]
    assert selection['names'] is not None
    # the logged lr (group 0, the cls token) skipped the warm-up
    first = [r for r in read_scalars(tmp_path) if 'loss' in r][0]
    assert first['lr'] == pytest.approx(2e-3)
