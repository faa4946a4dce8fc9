from .linear import LinearDecayLR, LinearLR
from .linear_interval import LinearLrInterval
from .reduce import ReduceLR

__all__ = ['LinearLR', 'LinearDecayLR', 'LinearLrInterval', 'ReduceLR']
