"""Optimizer-wrapper constructors: layer-wise lr decay in merged groups."""
from .layer_decay_constructor import (LayerDecayOptimWrapperConstructor,
                                      param_group_rows)
from .layer_ids import find_trunk, layer_depths
from .param_groups import GroupRow

__all__ = [
    'LayerDecayOptimWrapperConstructor', 'param_group_rows', 'find_trunk',
    'layer_depths', 'GroupRow'
]
