"""mmlr: learning-rate strategies for fine-tuning, as an mmengine plugin.

``custom_imports = dict(imports=['mmlr'])`` in a config registers mmlr's
schedulers, optimizer-wrapper constructor and hooks, and makes their free
names usable without the ``mmlr.`` prefix (see :mod:`mmlr.registry`).
"""
import logging as _logging


class _DeepSpeedCpuNotice(_logging.Filter):
    """Drops DeepSpeed's notice that it found no GPU and uses the CPU.

    With DeepSpeed installed, mmengine imports it with its runner, and on a
    machine without a GPU DeepSpeed then prints that notice to stdout at
    every start of every tool. mmengine's environment dump says the same.
    Added before mmengine's runner is imported below.
    """

    def filter(self, record: _logging.LogRecord) -> bool:
        return 'Setting accelerator to CPU' not in record.getMessage()


_logging.getLogger('DeepSpeed').addFilter(_DeepSpeedCpuNotice())

# (mmlr.checkpoint allow-lists mmengine checkpoints)
from . import checkpoint  # noqa: F401,E402
from . import fsdp, hooks, optim, schedulers  # noqa: F401,E402
from .registry import (  # noqa: E402
    HOOKS, OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS, export_free_names)
from .version import __version__  # noqa: E402

for _registry in (PARAM_SCHEDULERS, OPTIM_WRAPPER_CONSTRUCTORS, HOOKS):
    export_free_names(_registry)

__all__ = ['__version__']
