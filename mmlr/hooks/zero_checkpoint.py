"""Checkpoints of runs whose optimizer is a ``ZeroRedundancyOptimizer``."""
import inspect

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmengine.optim.optimizer.zero_optimizer import \
    ZeroRedundancyOptimizer as MMEngineZeroRedundancyOptimizer
from torch.distributed.optim import ZeroRedundancyOptimizer

from ..registry import HOOKS


def zero_optimizers(optim_wrapper) -> list[ZeroRedundancyOptimizer]:
    """The ``ZeroRedundancyOptimizer`` s of an optim wrapper, in the order
    its ``state_dict()`` visits them.

    Args:
        optim_wrapper (OptimWrapper | OptimWrapperDict): The runner's.
    """
    wrappers = optim_wrapper.values() if isinstance(
        optim_wrapper, OptimWrapperDict) else [optim_wrapper]
    return [
        w.optimizer for w in wrappers
        if isinstance(getattr(w, 'optimizer', None), ZeroRedundancyOptimizer)
    ]


@HOOKS.register_module()
class ZeroCheckpointHook(Hook):
    """Let every rank take part when a checkpoint of a ZeRO run is saved.

    ``ZeroRedundancyOptimizer`` keeps each rank's share of the optimizer
    state on that rank; saving it means gathering the shares on rank 0 with
    ``consolidate_state_dict``, a collective call every rank has to make.
    ``Runner.save_checkpoint`` runs on rank 0 only (``master_only``), so
    with mmengine 0.10.7 rank 0 waits there for the other ranks forever: the
    run deadlocks at its first checkpoint.

    This hook makes the other ranks join at exactly that point: at the start
    of training it wraps ``runner.save_checkpoint`` (which ``CheckpointHook``
    calls on every rank for interval, last and best checkpoints alike) so
    that, when the optimizer state is saved, the ranks other than 0 call
    ``consolidate_state_dict(to=0)`` — rank 0 makes the matching call inside
    mmengine's ``ZeroRedundancyOptimizer.state_dict()``. For torch's own
    class, whose ``state_dict()`` does not consolidate, every rank calls it.
    Resuming needs nothing: every rank loads the consolidated state and
    keeps its own share.

    It does nothing when the run has no ``ZeroRedundancyOptimizer``, so
    ``tools/train.py`` adds it to every distributed run; with another entry
    point add it as a custom hook.

    Example:
        >>> optim_wrapper = dict(
        ...     constructor='LayerDecayOptimWrapperConstructor',
        ...     optimizer=dict(type='ZeroRedundancyOptimizer',
        ...                    optimizer_type='AdamW', lr=2e-3),
        ...     paramwise_cfg=dict(layer_decay_rate=0.75))
        >>> custom_hooks = [dict(type='mmlr.ZeroCheckpointHook')]
    """

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        if not zero_optimizers(runner.optim_wrapper):
            return
        save = runner.save_checkpoint
        if getattr(save, 'consolidates_zero_state', False):
            return  # a second instance of this hook: wrap once
        signature = inspect.signature(save)

        def save_checkpoint(*args, **kwargs):
            call = signature.bind(*args, **kwargs)
            call.apply_defaults()
            if call.arguments['save_optimizer']:
                for optimizer in zero_optimizers(runner.optim_wrapper):
                    if not (get_rank() == 0 and isinstance(
                            optimizer, MMEngineZeroRedundancyOptimizer)):
                        optimizer.consolidate_state_dict(to=0)
            return save(*args, **kwargs)

        save_checkpoint.consolidates_zero_state = True
        save_checkpoint.__doc__ = save.__doc__
        runner.save_checkpoint = save_checkpoint
        print_log(
            'ZeroCheckpointHook: every rank joins the consolidation of the '
            'ZeroRedundancyOptimizer state when a checkpoint is saved',
            logger='current')
