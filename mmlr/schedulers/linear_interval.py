"""``LinearLrInterval``: a linear ramp that changes only every few steps."""
import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin

from ..registry import PARAM_SCHEDULERS
from .ramp import LinearRampScheduler


@PARAM_SCHEDULERS.register_module()
class LinearLrInterval(LRSchedulerMixin, LinearRampScheduler):
    """A staircase ramp from ``start_factor`` to ``end_factor`` of each
    group's base lr, changing every ``interval`` steps.

    For GAN recipes such as CycleGAN's "constant, then decay linearly,
    updated every 400 iterations". Factors are relative to each group's base
    lr, like mmengine's ``LinearLR`` (mmagic's version treats them as
    absolute lrs). The first stair is ``start_factor`` (no one-step glitch
    at ``begin``) and the last stair inside the window is exactly
    ``end_factor``; with ``K = (end - begin - 1) // interval`` stairs after
    the first, stair ``k`` has factor ``start + (end - start) * k / K``.
    Counts its own steps, so it works outside a Runner.

    Porting an mmagic config: mmagic's CycleGAN writes the lr itself as
    ``start_factor=0.0002``; here write ``start_factor=1.0`` (or
    ``start_lr=0.0002``).

    Args:
        optimizer (Optimizer | OptimWrapper): Wrapped optimizer.
        interval (int): Steps per stair, >= 1. Defaults to 1 (a plain
            :class:`LinearLR`). Scaled by ``convert_to_iter_based``.
        start_factor, end_factor, begin, end, last_step, by_epoch, verbose,
        start_lr, end_lr, total_steps: As in :class:`LinearLR`, with
            defaults ``start_factor=1.0`` and ``end_factor=0.0``.

    Example:
        >>> # CycleGAN, 80k iterations: hold 2e-4 for 40k, then decay to 0
        >>> param_scheduler = dict(
        ...     type='LinearLrInterval', interval=400, by_epoch=False,
        ...     start_factor=1.0, end_factor=0.0, begin=40000, end=80000)
    """

    time_args = LinearRampScheduler.time_args + ('interval', )
    setting_keys = LinearRampScheduler.setting_keys + ('interval', )
    default_start_factor = 1.0
    default_end_factor = 0.0

    def __init__(self, optimizer, *args, interval: int = 1, **kwargs):
        check_interval(interval)
        self.interval = interval
        super().__init__(optimizer, *args, **kwargs)

    @classmethod
    def _scale_time(cls, key: str, value, epoch_length: int):
        if key == 'interval':  # a stair is never shorter than one iteration
            check_interval(value, unit='epochs')
            return max(1, int(math.ceil(value * epoch_length)))
        return super()._scale_time(key, value, epoch_length)

    def factor_at(self, t: int) -> float:
        stairs = self.ramp_length // self.interval
        if stairs == 0:
            return self.end_factor
        k = min(t // self.interval, stairs)
        return self.start_factor + (self.end_factor -
                                    self.start_factor) * k / stairs


def check_interval(interval, unit: str = 'steps') -> None:
    """``interval`` must be a whole number of steps >= 1; in epochs
    (``convert_to_iter_based``) any number > 0."""
    if unit == 'steps':
        valid = isinstance(interval, int) and interval >= 1
    else:
        valid = isinstance(interval, (int, float)) and interval > 0
    if isinstance(interval, bool) or not valid:
        kind = 'an int >= 1' if unit == 'steps' else 'a number > 0'
        raise ValueError(f'interval must be {kind} ({unit} per stair), got '
                         f'{interval!r}')


__all__ = ['LinearLrInterval']
