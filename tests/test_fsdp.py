"""Layer decay under FSDP (mmengine's FSDPStrategy in FlexibleRunner).

The 2-process run trains configs/vit_digits_layer_decay_fsdp.py (every
transformer block an FSDP unit, activation checkpointing on each) for 2
epochs, resumes to 3, and compares every parameter's lr and weight decay
with a single-process build of the same config, by original name.
"""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

from conftest import REPO, read_scalars, train_in_process, \
    warm_up_then_cosine_by_hand
from mmlr.optim import build_constructor
from mmlr.optim.param_names import strip_wrappers
from test_distributed import run_dist

CONFIG = 'configs/vit_digits_layer_decay_fsdp.py'
ITERS_PER_EPOCH = 4  # 256 images, 32 a batch on each of 2 ranks
# The cosine's end pinned to epoch 4 so the 2-epoch run and its resume
# schedule one curve.
SHORT = [
    'train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1', 'param_scheduler.1.end=4',
    f'train_dataloader.dataset.indices={list(range(256))}',
    f'val_dataloader.dataset.indices={list(range(64))}'
]


def single_process_settings() -> dict:
    """``{parameter name: (lr, weight_decay)}`` of the config built in one
    process, without FSDP."""
    cfg = Config.fromfile(REPO / CONFIG)
    model = MODELS.build(cfg.model)
    optimizer = build_constructor(cfg.optim_wrapper)(model).optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: (g['lr'], g['weight_decay'])
        for g in optimizer.param_groups for p in g['params']
    }


def layer_lrs_by_hand(iterations: int) -> dict:
    """lr of each layer id at every iteration of an uninterrupted run:
    base 2e-3 * 0.75 ** (5 - id), mmengine's LinearLR warm-up from 0.01
    over the first epoch by iteration, then cosine by epoch to an absolute
    eta_min of 1e-5 at epoch 4."""
    return {
        layer: warm_up_then_cosine_by_hand(
            2e-3 * 0.75**(5 - layer), 4, ITERS_PER_EPOCH, 0.01,
            eta_min=1e-5)[:iterations]
        for layer in range(6)
    }


def test_fsdp_two_processes_keep_every_lr_through_checkpoint_and_resume(
        tmp_path):
    # 'full': one checkpoint file, readable here (a sharded one loads only
    # in the ranks' own process group; test_fsdp_sharded_checkpoints_...
    # resumes those).
    options = [*SHORT, 'strategy.state_dict_cfg=full']
    first = run_dist(CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                     *options)
    expected = single_process_settings()
    agreed = (f'ParamGroupCheckHook: 12 parameter groups ({len(expected)} '
              'tensors) identical on all 2 ranks')
    assert agreed in first
    resumed = run_dist(CONFIG, '--work-dir', str(tmp_path), '--resume',
                       '--cfg-options', *options, 'train_cfg.max_epochs=3')
    assert 'resumed epoch: 2' in resumed
    assert agreed in resumed  # the loaded state agrees too

    checkpoint = torch.load(tmp_path / 'epoch_3.pth', map_location='cpu',
                            weights_only=True)
    optimizer = checkpoint['optimizer']
    # Every parameter's configured lr and weight decay, by original name,
    # equal those of the single-process build (1-D shards would have lost
    # the weights' decay, wrapped names their layer ids).
    got = {
        name: (group['initial_lr'], group['weight_decay'])
        for group in optimizer['param_groups'] for name in group['params']
    }
    assert got == expected
    # The names mmlr stores are the original ones too.
    stored = checkpoint['optimizer_param_names']['']
    assert sorted(n for group in stored for n in group) == sorted(expected)
    # AdamW's state of all 3 epochs, in the parameters' own shapes.
    model = MODELS.build(Config.fromfile(REPO / CONFIG).model)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert set(optimizer['state']) == set(expected)
    for name, state in optimizer['state'].items():
        assert int(state['step']) == 3 * ITERS_PER_EPOCH
        assert state['exp_avg'].shape == shapes[name]

    # Each layer's lr at every iteration, before and after the resume, is
    # that of an uninterrupted run.
    by_hand = layer_lrs_by_hand(3 * ITERS_PER_EPOCH)
    records = [r for r in read_scalars(tmp_path) if 'lr_layer_0' in r]
    assert [r['iter'] for r in records] == list(
        range(1, 3 * ITERS_PER_EPOCH + 1))
    for record in records:
        for layer, curve in by_hand.items():
            assert record[f'lr_layer_{layer}'] == pytest.approx(
                curve[record['iter'] - 1], rel=1e-12)


@pytest.mark.parametrize('state_dict', ['local', 'full'])
def test_fsdp_checkpoints_resume_like_an_uninterrupted_run(
        state_dict, gloo_world_of_one, tmp_path):
    # One process in a gloo group of one: FSDP wraps (nothing to shard:
    # torch gives it NO_SHARD) and saves 'local' checkpoints as a directory
    # of per-rank files. Dropout off: mmengine reseeds on resume.
    options = [*SHORT[1:], f'strategy.state_dict_cfg={state_dict}',
               f'train_dataloader.dataset.indices={list(range(96))}',
               'model.drop_path_rate=0.0', 'model.proj_drop_rate=0.0',
               'model.attn_drop_rate=0.0']
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    train_in_process(CONFIG, whole, 'train_cfg.max_epochs=3', *options)
    train_in_process(CONFIG, part, 'train_cfg.max_epochs=2', *options)
    assert (part / 'epoch_2.pth').is_dir() == (state_dict == 'local')
    # A stale last_checkpoint: FlexibleRunner loads before before_run, and
    # SafeCheckpointHook still falls back to the newest complete checkpoint.
    (part / 'last_checkpoint').write_text(str(part / 'epoch_9.pth'))
    resumed = train_in_process(CONFIG, part, 'train_cfg.max_epochs=3',
                               *options, flags=('--resume', ))
    assert f'resuming from {part / "epoch_2.pth"}, the newest complete' \
        in resumed
    assert 'resumed epoch: 2' in resumed
    # OptimizerResumeHook rebuilt the config's schedule through the strategy
    assert 'Resume: following the config, train_cfg.max_epochs 2 -> 3' \
        in resumed

    def epoch_3(work_dir):
        return [{k: v for k, v in r.items()
                 if k.startswith('lr') or k in ('iter', 'loss')}
                for r in read_scalars(work_dir) if r.get('epoch') == 3]

    expected = epoch_3(whole)
    assert sum('lr_layer_0' in r for r in expected) == 3
    assert epoch_3(part) == expected


def _digits_model_and_optim_cfg():
    cfg = Config.fromfile(REPO / CONFIG)
    return MODELS.build(cfg.model), copy.deepcopy(cfg.optim_wrapper)


def test_constructor_refuses_parameters_fsdp_flattened(gloo_world_of_one):
    from torch.distributed.fsdp import FullyShardedDataParallel
    model, optim_cfg = _digits_model_and_optim_cfg()
    wrapped = FullyShardedDataParallel(model, use_orig_params=False,
                                       device_id=torch.device('cpu'))
    with pytest.raises(ValueError, match=r"flattened by FSDP \(e\.g\. "
                       r"'_fsdp_wrapped_module\._flat_param'\).*"
                       r"use_orig_params=True"):
        build_constructor(optim_cfg)(wrapped)


def test_activation_checkpoint_wrappers_change_no_lr_or_decay():
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import \
        apply_activation_checkpointing
    from timm.models.vision_transformer import Block
    model, optim_cfg = _digits_model_and_optim_cfg()
    expected = single_process_settings()
    apply_activation_checkpointing(
        model, check_fn=lambda module: isinstance(module, Block))
    names = [n for n, _ in model.named_parameters()]
    assert 'backbone.blocks.0._checkpoint_wrapped_module.attn.qkv.weight' \
        in names
    optimizer = build_constructor(optim_cfg)(model).optimizer
    ids = {id(p): strip_wrappers(n) for n, p in model.named_parameters()}
    assert {
        ids[id(p)]: (g['lr'], g['weight_decay'])
        for g in optimizer.param_groups for p in g['params']
    } == expected
