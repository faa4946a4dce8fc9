"""Configs with a ``strategy``: tools/train.py runs them in mmengine's
FlexibleRunner with mmlr's hooks, and refuses bad strategies at once.
(Training and resuming in it: tests/test_fsdp.py.)"""
from mmengine.runner import FlexibleRunner

from conftest import REPO, tool_main, user_error_line
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
