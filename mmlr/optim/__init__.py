"""Optimizer-wrapper constructors: layer-wise lr decay in merged groups."""
from .constructor_build import build_constructor, param_group_rows
from .group_names import group_param_names, record_param_names
from .layer_decay_constructor import LayerDecayOptimWrapperConstructor
from .param_groups import GroupRow

__all__ = [
    'LayerDecayOptimWrapperConstructor', 'build_constructor',
    'param_group_rows', 'GroupRow', 'group_param_names', 'record_param_names'
]
