"""mmlr: learning-rate strategies for fine-tuning, as an mmengine plugin.

``custom_imports = dict(imports=['mmlr'])`` in a config registers mmlr's
schedulers, optimizer-wrapper constructor and hooks, and makes their free
names usable without the ``mmlr.`` prefix (see :mod:`mmlr.registry`).
"""
from . import checkpoint  # noqa: F401  (allow-lists mmengine checkpoints)
from . import fsdp, hooks, optim, schedulers  # noqa: F401
from .registry import (HOOKS, OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS,
                       export_free_names)
from .version import __version__

for _registry in (PARAM_SCHEDULERS, OPTIM_WRAPPER_CONSTRUCTORS, HOOKS):
    export_free_names(_registry)

__all__ = ['__version__']
