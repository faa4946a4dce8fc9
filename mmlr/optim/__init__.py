"""Optimizer-wrapper constructors: layer-wise lr decay in merged groups."""
from .constructor_build import build_constructor
from .group_report import GroupReport, group_report, write_param_csv
from .group_names import group_param_names, record_param_names
from .layer_decay_constructor import LayerDecayOptimWrapperConstructor
from .param_groups import GroupRow

__all__ = [
    'LayerDecayOptimWrapperConstructor', 'build_constructor', 'GroupRow',
    'GroupReport', 'group_report', 'write_param_csv', 'group_param_names',
    'record_param_names'
]
