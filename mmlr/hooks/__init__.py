from .param_group_check import ParamGroupCheckHook
from .safe_checkpoint import SafeCheckpointHook
from .scheduler_check import SchedulerCheckHook
from .zero_checkpoint import ZeroCheckpointHook

__all__ = [
    'ParamGroupCheckHook', 'SafeCheckpointHook', 'SchedulerCheckHook',
    'ZeroCheckpointHook'
]
