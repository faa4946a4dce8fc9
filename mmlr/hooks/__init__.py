from .layer_lr_logger import LayerLrLoggerHook
from .param_group_check import ParamGroupCheckHook
from .scheduler_check import SchedulerCheckHook
from .zero_checkpoint import ZeroCheckpointHook

__all__ = [
    'LayerLrLoggerHook', 'ParamGroupCheckHook', 'SchedulerCheckHook',
    'ZeroCheckpointHook'
]
