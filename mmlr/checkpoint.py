"""Resume mmengine checkpoints on torch >= 2.6 without ``weights_only=False``.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6
that means ``weights_only=True``, and its own checkpoints fail with
``Unsupported global ... HistoryBuffer`` (the message hub's log buffers). This
module allow-lists exactly the types those checkpoints hold, and nothing that
could load arbitrary objects:

- ``HistoryBuffer`` and numpy's array/scalar reconstruction (the buffers are
  numpy arrays; logged scalars may be numpy scalars), with the dtype classes;
- ``builtins.getattr``, because ``HistoryBuffer`` pickles its statistics
  methods as ``getattr(HistoryBuffer, 'mean')``. Allow-listing ``getattr``
  itself would let a checkpoint reach any attribute of any allowed object, so
  the pickled name is bound to :func:`history_buffer_getattr`, which returns
  only those four methods and refuses everything else.

Importing :mod:`mmlr` applies it (``custom_imports`` or ``tools/train.py``).
"""
import pickle
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

HISTORY_BUFFER_METHODS = ('min', 'max', 'mean', 'current')


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    Returns ``getattr(HistoryBuffer, name)`` for the statistics methods that
    ``HistoryBuffer`` pickles, and refuses any other object or name.

    Raises:
        pickle.UnpicklingError: For anything but HistoryBuffer's
            ``min``/``max``/``mean``/``current``.
    """
    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); mmlr only allows '
        f'getattr(HistoryBuffer, one of {HISTORY_BUFFER_METHODS}) when '
        'loading with weights_only=True')


def _numpy_globals() -> list:
    """numpy's array and scalar reconstruction under both module spellings.

    numpy 2 pickles them as ``numpy._core.multiarray.*``, numpy 1 as
    ``numpy.core.multiarray.*``; checkpoints written by either must load.
    """
    multiarray = np._core.multiarray
    entries: list = [np.ndarray, np.dtype]
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            entries.append((func, f'{module}.{func.__name__}'))
    entries.extend(
        getattr(np.dtypes, name) for name in np.dtypes.__all__
        if isinstance(getattr(np.dtypes, name), type))
    return entries


def mmengine_checkpoint_globals() -> list:
    """Everything ``torch.load(weights_only=True)`` needs for an mmengine
    checkpoint, in the form :func:`torch.serialization.add_safe_globals`
    takes."""
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')
            ] + _numpy_globals()


def allow_mmengine_checkpoints() -> None:
    """Allow-list the globals of mmengine checkpoints for this process."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


allow_mmengine_checkpoints()
