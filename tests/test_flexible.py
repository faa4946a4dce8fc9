"""Configs with a ``strategy``: tools/train.py runs them in mmengine's
FlexibleRunner with mmlr's hooks, and refuses bad strategies at once."""
from mmengine.runner import FlexibleRunner

from conftest import (REPO, read_scalars, tool_main, train_in_process,
                      user_error_line)
from mmlr.flexible import MmlrFlexibleRunner
from mmlr.fsdp import check_fsdp_cfg
from mmlr.hooks import (LayerLrLoggerHook, OptimizerResumeHook,
                        SafeCheckpointHook, SchedulerCheckHook)
from mmlr.launch import build_runner, prepare_config

CONFIG = 'configs/vit_digits_layer_decay.py'
FSDP_CONFIG = 'configs/vit_digits_layer_decay_fsdp.py'
SINGLE = 'strategy.type=SingleDeviceStrategy'
# 3 batches of 32 an epoch, dropout off (mmengine reseeds on resume), the
# cosine's end pinned so the 2-epoch run and its resume schedule one curve.
SHORT = [
    SINGLE, f'train_dataloader.dataset.indices={list(range(96))}',
    f'val_dataloader.dataset.indices={list(range(32))}',
    'model.drop_path_rate=0.0', 'model.proj_drop_rate=0.0',
    'model.attn_drop_rate=0.0', 'default_hooks.logger.interval=1',
    'default_hooks.checkpoint.interval=1', 'param_scheduler.1.end=3'
]


def test_a_strategy_config_is_built_as_a_flexible_runner_with_the_hooks(
        tmp_path):
    cfg = prepare_config(str(REPO / CONFIG), work_dir=str(tmp_path),
                         cfg_options={'strategy': dict(
                             type='SingleDeviceStrategy'),
                             'experiment_name': 'flexible_build'})
    runner = build_runner(cfg)
    assert isinstance(runner, MmlrFlexibleRunner)
    assert isinstance(runner, FlexibleRunner)
    for hook_type in (SchedulerCheckHook, OptimizerResumeHook,
                      SafeCheckpointHook, LayerLrLoggerHook):
        assert sum(isinstance(h, hook_type) for h in runner.hooks) == 1


def test_flexible_runner_resumes_like_an_uninterrupted_run(tmp_path):
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    log = train_in_process(CONFIG, whole, 'train_cfg.max_epochs=3', *SHORT)
    # SingleDeviceStrategy's own line: the strategy built the model
    assert 'Distributed training is not used, all SyncBatchNorm' in log
    train_in_process(CONFIG, part, 'train_cfg.max_epochs=2', *SHORT)
    resumed = train_in_process(CONFIG, part, 'train_cfg.max_epochs=3',
                               *SHORT, flags=('--resume', ))
    # mmengine's load (weights_only=True on torch 2.14) read the checkpoint
    assert 'resumed epoch: 2' in resumed
    # OptimizerResumeHook replayed the schedule through the strategy
    assert 'Resume: following the config, train_cfg.max_epochs 2 -> 3' \
        in resumed

    def epoch_3(work_dir):
        # every layer's lr (LayerLrLoggerHook), the logged lr and the loss
        return [{k: v for k, v in r.items()
                 if k.startswith('lr') or k in ('iter', 'loss')}
                for r in read_scalars(work_dir) if r.get('epoch') == 3]

    expected = epoch_3(whole)
    assert sum('loss' in r for r in expected) == 3
    assert sum('lr_layer_5' in r for r in expected) == 3
    assert epoch_3(part) == expected


def test_unknown_strategy_is_one_line_naming_the_key_and_the_names(
        capsys, tmp_path):
    line = user_error_line(capsys, tool_main('train'), CONFIG, '--work-dir',
                           str(tmp_path), '--cfg-options',
                           'strategy.type=FSDPStrategyy')
    assert "strategy.type 'FSDPStrategyy' is not a strategy" in line
    for name in ('DDPStrategy', 'FSDPStrategy', 'SingleDeviceStrategy'):
        assert name in line


def test_fsdp_without_original_params_is_refused_for_layer_decay(
        capsys, tmp_path):
    line = user_error_line(
        capsys, tool_main('train'), FSDP_CONFIG, '--work-dir', str(tmp_path),
        '--cfg-options', 'strategy.model_wrapper.use_orig_params=False')
    assert 'strategy.model_wrapper.use_orig_params=False' in line
    assert "'LayerDecayOptimWrapperConstructor'" in line
    assert line.endswith('set strategy.model_wrapper.use_orig_params=True')


def test_fsdp_without_original_params_is_fine_for_one_group():
    # one group needs no names (the check only; no Runner is built)
    cfg = prepare_config(
        str(REPO / FSDP_CONFIG), cfg_options={
            'strategy.model_wrapper.use_orig_params': False,
            'optim_wrapper.constructor': 'DefaultOptimWrapperConstructor',
            'optim_wrapper.paramwise_cfg': None})
    check_fsdp_cfg(cfg)
