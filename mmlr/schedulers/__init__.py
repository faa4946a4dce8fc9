from .group_select import GroupSelect
from .linear import LinearDecayLR, LinearLR
from .linear_interval import LinearLrInterval
from .reduce import ReduceLR

__all__ = [
    'GroupSelect', 'LinearLR', 'LinearDecayLR', 'LinearLrInterval', 'ReduceLR'
]
