from .layer_lr_logger import LayerLrLoggerHook
from .optimizer_resume import OptimizerResumeHook
from .param_group_check import ParamGroupCheckHook
from .safe_checkpoint import SafeCheckpointHook
from .scheduler_check import SchedulerCheckHook
from .zero_checkpoint import ZeroCheckpointHook

__all__ = [
    'LayerLrLoggerHook', 'OptimizerResumeHook', 'ParamGroupCheckHook',
    'SafeCheckpointHook', 'SchedulerCheckHook', 'ZeroCheckpointHook'
]
