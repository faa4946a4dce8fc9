"""Resume mmengine checkpoints on torch >= 2.6 without ``weights_only=False``.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6
that means ``weights_only=True``, and its own checkpoints fail with
``Unsupported global ... HistoryBuffer`` (the message hub's log buffers). This
module allow-lists exactly the types those checkpoints hold, and nothing that
could load arbitrary objects:

- ``HistoryBuffer`` and numpy's array/scalar reconstruction (the buffers are
  numpy arrays; logged scalars may be numpy scalars), with the dtype classes;
- the sharded tensors of ``FSDPStrategy``'s sharded (``'local'``)
  checkpoints: torch's ``ShardedTensor`` with its shard, metadata, sharding
  spec and device classes (plain records whose ``__setstate__`` only
  assigns fields and checks the rank);
- ``builtins.getattr``, because ``HistoryBuffer`` pickles its statistics
  methods as ``getattr(HistoryBuffer, 'mean')`` (and ``ShardedTensor`` its
  nested ``ProcessGroupState`` record the same way). Allow-listing
  ``getattr`` itself would let a checkpoint reach any attribute of any
  allowed object, so the pickled name is bound to
  :func:`history_buffer_getattr`, which returns only those attributes and
  refuses everything else.

Importing :mod:`mmlr` applies it (``custom_imports`` or ``tools/train.py``).

torch's ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns ``weights_only`` off for
every ``torch.load`` that does not pass it, mmengine's included: then a
checkpoint runs whatever code it holds. mmlr's tools refuse to run while it
is set unless ``--trust-checkpoint-code`` is given
(:func:`refuse_forced_code_loading`), and they check the checkpoint a run
loads before the Runner is built (:func:`check_checkpoint_file`).
"""
import glob
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from torch.distributed._shard.metadata import ShardMetadata
from torch.distributed._shard.sharded_tensor import Shard, ShardedTensor
from torch.distributed._shard.sharded_tensor.metadata import (
    MEM_FORMAT_ENCODING, ShardedTensorMetadata, TensorProperties)
from torch.distributed._shard.sharding_spec import (
    ChunkShardingSpec, EnumerableShardingSpec)
from torch.distributed.remote_device import _remote_device

from .user_errors import UserError

FORCE_NO_WEIGHTS_ONLY = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
TRUST_FLAG = '--trust-checkpoint-code'

HISTORY_BUFFER_METHODS = ('min', 'max', 'mean', 'current')
#: the attributes checkpoints may reach with ``getattr``, per class
ALLOWED_ATTRIBUTES = {
    HistoryBuffer: HISTORY_BUFFER_METHODS,
    ShardedTensor: ('ProcessGroupState', ),
}


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    Returns ``getattr(HistoryBuffer, name)`` for the statistics methods that
    ``HistoryBuffer`` pickles, ``ShardedTensor.ProcessGroupState``, and
    refuses any other object or name.

    Raises:
        pickle.UnpicklingError: For anything but the attributes of
            ``ALLOWED_ATTRIBUTES``.
    """
    if name in ALLOWED_ATTRIBUTES.get(obj, ()):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); mmlr only allows '
        f'getattr(HistoryBuffer, one of {HISTORY_BUFFER_METHODS}) and '
        'getattr(ShardedTensor, \'ProcessGroupState\') when loading with '
        'weights_only=True')


def _sharded_tensor_globals() -> list:
    """What a pickled ``ShardedTensor`` (FSDP's sharded state dicts) is
    made of."""
    return [
        ShardedTensor, ShardedTensor.ProcessGroupState, Shard, ShardMetadata,
        ShardedTensorMetadata, TensorProperties, MEM_FORMAT_ENCODING,
        _remote_device, ChunkShardingSpec, EnumerableShardingSpec
    ]


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
            ] + _numpy_globals() + _sharded_tensor_globals()


def allow_mmengine_checkpoints() -> None:
    """Allow-list the globals of mmengine checkpoints for this process."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


def weights_only_forced_off() -> bool:
    """Whether torch loads without ``weights_only`` when a caller does not
    pass it: ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` set to one of the values
    ``torch.load`` takes as true."""
    return os.getenv(FORCE_NO_WEIGHTS_ONLY, '0').lower() in (
        '1', 'y', 'yes', 'true')


def refuse_forced_code_loading(trust_checkpoint_code: bool = False) -> None:
    """Stop a tool while ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is set, unless
    the user named the risk with ``--trust-checkpoint-code``.

    Raises:
        UserError: The variable is set and ``trust_checkpoint_code`` is
            False.
    """
    if weights_only_forced_off() and not trust_checkpoint_code:
        raise UserError(
            f'{FORCE_NO_WEIGHTS_ONLY} is set: torch.load would run any code '
            'a checkpoint holds (--resume, load_from, pretrained weights); '
            'mmlr loads mmengine checkpoints without it, so unset it, or '
            f'pass {TRUST_FLAG} to load with it only files whose authors '
            'you trust')


def checkpoint_dir_files(path: str) -> list[str]:
    """The files of a checkpoint that is a directory: one ``rank<i>.pth``
    per rank (``FSDPStrategy``'s sharded state dicts), or DeepSpeed's
    ``*.pt`` files (``mp_rank_00_model_states.pt`` beside one
    ``zero_pp_rank_<i>_mp_rank_00_optim_states.pt`` per rank). Empty when
    it holds neither."""
    shards = sorted(glob.glob(osp.join(path, 'rank*.pth')))
    if shards:
        return shards
    if glob.glob(osp.join(path, '*_model_states.pt')):
        return sorted(glob.glob(osp.join(path, '*.pt')))
    return []


def check_checkpoint_file(path: str, source: str = 'checkpoint',
                          contents: bool = True,
                          allowed: tuple = ()) -> None:
    """Check, before a long setup, that ``path`` is a checkpoint the run
    can load: the file exists and (with ``contents``) loads with
    ``weights_only=True`` under mmlr's allow-list. A directory is a sharded
    checkpoint: each of its files (:func:`checkpoint_dir_files`) must be
    there, and DeepSpeed's load with its records allowed too.

    Zip-format files are memory-mapped, so the weights are not read.

    Args:
        path (str): The checkpoint file.
        source (str): Where the path came from (``'--resume'``,
            ``'load_from'``), for the message.
        contents (bool): Also load it. Defaults to True.
        allowed (tuple): Globals allowed besides mmlr's allow-list.

    Raises:
        UserError: ``not a readable checkpoint: PATH`` with the reason; a
            file that asks for code (a global outside the allow-list) is
            refused without anything of it running.

    Example:
        >>> check_checkpoint_file('work_dirs/vit_digits/epoch_1.pth')
    """
    if osp.isdir(path):
        shards = checkpoint_dir_files(path)
        if not shards:
            raise UserError(f'{source}: checkpoint {path} is a directory '
                            'without rank<i>.pth files (FSDP) or '
                            '*_model_states.pt (DeepSpeed)')
        if shards[0].endswith('.pt'):  # DeepSpeed's
            from .deepspeed_strategy import deepspeed_checkpoint_globals
            for shard in shards:
                check_checkpoint_file(shard, source, contents,
                                      tuple(deepspeed_checkpoint_globals()))
            return
        # Only their presence: a sharded tensor loads only in the process
        # group of the rank that saved it, which does not exist yet.
        for shard in shards:
            check_checkpoint_file(shard, source, contents=False)
        return
    if not osp.isfile(path):
        raise UserError(f'{source}: checkpoint {path} does not exist')
    if not contents:
        return
    try:
        with open(path, 'rb') as file:
            mmap = zipfile.is_zipfile(file)
        with torch.serialization.safe_globals(list(allowed)):
            torch.load(path, map_location='cpu', weights_only=True,
                       mmap=mmap)
    except Exception as error:  # every way a file can fail to load
        raise UserError(f'not a readable checkpoint: {path} ({source}; '
                        f'{_unreadable_reason(error, path)})') from None


_REFUSED_GLOBAL = re.compile(
    r'GLOBAL (\S+) (?:was not an allowed global|whose module \S+ is blocked)')
_REFUSED_GETATTR = re.compile(r'checkpoint asks for (getattr\(.*?\));')
_PICKLER_MESSAGE = re.compile(r'WeightsUnpickler error:\s*(.+)')


def _unreadable_reason(error: Exception, path: str) -> str:
    # torch's own messages advise loading with weights_only=False: the
    # reason is rebuilt from the parts that say what the file holds.
    text = str(error)
    asked = _REFUSED_GLOBAL.search(text) or _REFUSED_GETATTR.search(text)
    if asked:
        return (f'it asks for {asked.group(1)}, which is code, not data; '
                'nothing of it ran')
    if os.path.getsize(path) == 0:
        return 'the file is empty'
    if isinstance(error, EOFError):
        return 'the file ends early'
    detail = _PICKLER_MESSAGE.search(text)
    if detail:
        return detail.group(1).strip().splitlines()[0]
    # The first sentence only: torch's advice follows it.
    first = text.splitlines()[0].split('. ')[0] if text else ''
    return f'{type(error).__name__}: {first}'


allow_mmengine_checkpoints()
