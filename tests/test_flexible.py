"""Configs with a ``strategy``: tools/train.py runs them in mmengine's
FlexibleRunner with mmlr's hooks, and refuses bad strategies at once.
(Training and resuming in it: tests/test_fsdp.py.)"""
import re

import pytest
from mmengine.runner import FlexibleRunner

from conftest import REPO, tool_main, train_in_process, user_error_line
from mmlr.flexible import MmlrFlexibleRunner
from mmlr.fsdp import check_fsdp_cfg
from mmlr.hooks import (LayerLrLoggerHook, OptimizerResumeHook,
                        SafeCheckpointHook, SchedulerCheckHook)
from mmlr.launch import build_runner, prepare_config

CONFIG = 'configs/vit_digits_layer_decay.py'
FSDP_CONFIG = 'configs/vit_digits_layer_decay_fsdp.py'


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


def test_unknown_strategy_is_one_line_naming_the_key_and_the_names(
        capsys, tmp_path):
    line = user_error_line(capsys, tool_main('train'), CONFIG, '--work-dir',
                           str(tmp_path), '--cfg-options',
                           'strategy.type=FSDPStrategyy')
    # mmengine 0.10.7's mmengine/_strategy registers these five (ColossalAI's
    # and DeepSpeed's classes even without their packages, FSDP's on
    # torch >= 2.0); the config's scope ('mmengine') adds none.
    assert line == (
        "error: strategy.type 'FSDPStrategyy' is not a strategy mmengine "
        'knows here; accepted: ColossalAIStrategy, DDPStrategy, '
        'DeepSpeedStrategy, FSDPStrategy, SingleDeviceStrategy')


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


@pytest.mark.parametrize('strategy', ['SingleDeviceStrategy', 'DDPStrategy'])
def test_group_select_by_name_under_a_strategy_with_any_constructor(
        tmp_path, gloo_world_of_one, strategy):
    # mmengine's default constructor (one group per parameter with a
    # paramwise_cfg) knows no names; tools/train.py records them under
    # FlexibleRunner too. Only backbone.cls_token (group 0, whose lr the
    # log shows) is selected and halved: 2e-3 * 0.5.
    config = tmp_path / 'by_name.py'
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/vit_digits.py')!r}]\n"
        f"strategy = dict(type={strategy!r})\n"
        "optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))\n"
        "param_scheduler = [dict(type='GroupSelect', groups=dict("
        "names=r'^backbone\\.cls_token$'), scheduler='ConstantLR', "
        "factor=0.5, end=1000, by_epoch=False)]\n")
    log = train_in_process(
        str(config), tmp_path / 'work', 'train_cfg.max_epochs=1',
        'train_dataloader.batch_size=16',
        f'train_dataloader.dataset.indices={list(range(32))}'.replace(
            ' ', ''), 'default_hooks.logger.interval=1')
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\] +base_lr: 2\.0000e-03 '
                     r'lr: 1\.0000e-03', log), log[-3000:]
