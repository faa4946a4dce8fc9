from .cooldown import CooldownLR
from .group_select import GroupSelect
from .inverse_sqrt import InverseSqrtLR
from .linear import LinearDecayLR, LinearLR
from .linear_interval import LinearLrInterval
from .reduce_lr import ReduceLR

__all__ = [
    'LinearLR', 'LinearDecayLR', 'LinearLrInterval', 'ReduceLR', 'CooldownLR',
    'InverseSqrtLR', 'GroupSelect'
]
