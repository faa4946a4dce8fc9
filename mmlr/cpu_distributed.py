"""Process groups for CPU runs: set up before the Runner is built, ended
once the run is over (used by :mod:`mmlr.launch` and ``tools/train.py``)."""
import gc
import os

import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.device import get_device
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

from .flexible import uses_strategy


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let the ``pytorch`` launcher run on a machine without a GPU.

    mmengine 0.10.7's launcher always calls ``torch.cuda.set_device`` and its
    default DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both are wrong for
    CPU processes. Initialise the process group with gloo here (mmengine then
    skips its own initialisation) and build DDP without device ids. With a GPU
    nothing changes.
    """
    if cfg.launcher != 'pytorch' or get_device() != 'cpu':
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if uses_strategy(cfg):
        return  # the strategy wraps: MmlrFlexibleRunner.build_strategy
    if wrapper_cfg is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    else:
        wrapper_type = MODEL_WRAPPERS.get(
            wrapper_cfg.get('type', 'MMDistributedDataParallel'))
        if isinstance(wrapper_type, type) and issubclass(
                wrapper_type, DistributedDataParallel):
            wrapper_cfg.setdefault('device_ids', None)


def end_process_group(all_ranks_done: bool = True) -> None:
    """Destroy the default process group at the end of a run, and with it
    the backend's threads, while the interpreter is fully alive.

    Call it after the Runner is out of reach (no variable holds it).
    ``torch.distributed.destroy_process_group()`` alone only drops torch's
    own references to the group: DDP's reducer (and a
    ``ZeroRedundancyOptimizer``) hold it too, and the Runner holding them
    sits in reference cycles that only the garbage collector frees. The gloo
    backend and its worker threads then live on into interpreter shutdown.
    A worker may still be releasing the tensors of the last collective then
    (e.g. those of the final validation's ``broadcast_object_list``); a
    tensor whose Python object is already gone needs the GIL to be freed,
    and CPython ends a thread that takes the GIL after finalization began
    with ``pthread_exit``, which inside that C++ destructor is
    ``std::terminate``: "terminate called without an active exception",
    SIGABRT, exit code 1 after a good run. Here the cycles are collected
    first, so ``destroy_process_group()`` drops the last reference and the
    backend joins its threads now (torch releases the GIL for that, so a
    worker waiting for it finishes its work).

    Args:
        all_ranks_done (bool): Every rank finished its work (training
            succeeded). Then a barrier first makes sure no rank closes its
            connections while another still waits for its messages; after a
            failure there is no barrier, since another rank may be blocked
            in a collective that never completes.
    """
    if not torch_dist.is_initialized():
        return
    if all_ranks_done:
        torch_dist.barrier()
    gc.collect()
    torch_dist.destroy_process_group()
