"""``InverseSqrtLR``: the inverse-square-root decay of the Transformer
recipe, as a chainable factor."""
import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF

from ..registry import PARAM_SCHEDULERS
from .ramp import FactorScheduler


class InverseSqrtScheduler(FactorScheduler):
    """Chainable inverse-square-root decay of any optimizer value. See
    :class:`InverseSqrtLR` for the arguments."""

    time_args = ('begin', 'end', 'warmup')
    setting_keys = ('begin', 'end', 'by_epoch', 'warmup')

    def __init__(self, optimizer, param_name: str, warmup: int,
                 begin: int = 0, end: int = INF, last_step: int = -1,
                 by_epoch: bool = True, verbose: bool = False):
        check_warmup(warmup)
        self.warmup = warmup
        super().__init__(optimizer, param_name, begin, end, last_step,
                         by_epoch, verbose)

    @classmethod
    def _scale_time(cls, key: str, value, epoch_length: int):
        if key == 'warmup':  # checked in epochs, before scaling
            check_warmup(value, unit='epochs')
            return max(1, int(value * epoch_length))
        return super()._scale_time(key, value, epoch_length)

    def factor_at(self, t: int) -> float:
        return math.sqrt(self.warmup / max(t, self.warmup))


def check_warmup(warmup, unit: str = 'steps') -> None:
    """``warmup`` must be a whole number of steps >= 1; in epochs
    (``convert_to_iter_based``) any number > 0."""
    if unit == 'steps':
        valid = isinstance(warmup, int) and warmup >= 1
    else:
        valid = isinstance(warmup, (int, float)) and warmup > 0
    if isinstance(warmup, bool) or not valid:
        kind = 'an int >= 1' if unit == 'steps' else 'a number > 0'
        raise ValueError(f'warmup must be {kind} ({unit} before the decay '
                         f'starts), got {warmup!r}')


@PARAM_SCHEDULERS.register_module()
class InverseSqrtLR(LRSchedulerMixin, InverseSqrtScheduler):
    """Hold each group's lr for ``warmup`` steps, then decay it as the
    inverse square root of the step (the Transformer schedule of Vaswani et
    al. 2017, normalised to its peak).

    Step ``begin + t`` has the factor ``sqrt(warmup / max(t, warmup))``: 1
    up to step ``warmup``, then ``1/sqrt`` of the steps taken, never
    reaching 0, so a run can go on for any length (``end`` may stay
    open). The warm-up itself is another scheduler in the list, ending
    where the decay starts (``mmlr.LinearLR`` with ``end=warmup``); the two
    multiply, and every group keeps its ratio to the others.

    Args:
        optimizer (Optimizer | OptimWrapper): Wrapped optimizer.
        warmup (int): Steps from ``begin`` to the start of the decay, >= 1;
            with ``convert_to_iter_based``, epochs (fractions allowed),
            scaled to at least one iteration.
        begin (int): Step counted as ``t = 0``. Defaults to 0.
        end (int): Step after the last change. Defaults to never (a Runner
            fills in ``max_epochs``/``max_iters``).
        last_step (int): Must be -1; resume with ``load_state_dict``.
        by_epoch (bool): Count epochs (True) or iterations. Defaults to True.
        verbose (bool): Log every change. Defaults to False.

    Example:
        >>> # warm up over 500 iterations, then decay as 1/sqrt(step)
        >>> param_scheduler = [
        ...     dict(type='mmlr.LinearLR', start_factor=0.001, end=500,
        ...          by_epoch=False),
        ...     dict(type='InverseSqrtLR', warmup=500, by_epoch=False)]
    """


__all__ = ['InverseSqrtLR']
