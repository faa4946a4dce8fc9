"""The chainable core of mmlr's linear schedules: a factor curve applied on
top of whatever the other schedulers in the list do."""
import numpy as np
from mmengine.optim.scheduler.param_scheduler import INF

from .base import ResumableScheduler, base_lr_of, check_factor


def _all_zero(values: list) -> bool:
    # Runs every step: a float is tested as a float, the first non-zero
    # value ends it; mmlr.analysis passes arrays (every curve of a config as
    # one group), tested with np.any.
    for value in values:
        if value.__class__ is float:
            if value != 0.0:
                return False
        elif np.any(value):
            return False
    return True


class FactorScheduler(ResumableScheduler):
    """Multiply each group's value by ``factor_at(t)``, ``t`` counted from
    ``begin``, and compose with other schedulers by multiplication.

    Each step divides out the factor applied last and applies the new one,
    so changes other schedulers make in between carry through, exactly as
    mmengine's ``LinearLR`` composes (``lr * f(t) / f(t-1)``). The value seen
    beneath the factor is remembered, so a factor of 0 (warm-up from zero)
    never divides by zero. A ramp that starts while an earlier ramp's zero
    factor holds the value at 0 takes the first non-zero value written
    afterwards as the value beneath it, so ramps overlapping a warm-up from 0
    listed first compose as the product of their factors; a warm-up from 0
    listed after a scheduler that already scaled the value at step 0 is
    refused (its factor would be lost). Subclasses define :meth:`factor_at`;
    :meth:`value_at` is the closed form for checks and plots.
    """

    progress_keys = ResumableScheduler.progress_keys + ('_applied_factor',
                                                        '_underlying')

    def __init__(self, optimizer, param_name: str, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False):
        self._applied_factor: float | None = None
        self._underlying: list[float] = []
        super().__init__(optimizer, param_name, begin, end, last_step,
                         by_epoch, verbose)

    def factor_at(self, t: int) -> float:
        """Factor for the ``t``-th step inside the window (``t >= 0``)."""
        raise NotImplementedError

    def _get_value(self) -> list[float]:
        current = [g[self.param_name] for g in self.optimizer.param_groups]
        if self.last_step == 0 or len(self._underlying) != len(current):
            self._check_zero_start(current)
            self._underlying = current
        elif _all_zero(self._underlying) and not _all_zero(current):
            # We started on a value another ramp's zero factor held at 0; it
            # has since rewritten the value from its own memory, without our
            # factor: that is the value beneath ours.
            self._underlying = current
        elif self._applied_factor:  # else: held at 0, keep what was beneath
            self._underlying = [v / self._applied_factor for v in current]
        self._applied_factor = self.factor_at(self.last_step)
        return [v * self._applied_factor for v in self._underlying]

    def _check_zero_start(self, current: list) -> None:
        # A factor of 0 at construction wipes out what schedulers listed
        # earlier applied at this same step: one that divides its factor out
        # later (a ramp, mmengine's LinearLR or ConstantLR) would lose it.
        # (A value already at 0 is another warm-up's: nothing to lose.)
        if self._global_step != 0 or self.factor_at(0) != 0 or _all_zero(
                current):
            return
        if any(np.any(value != base)
               for value, base in zip(current, self.base_values)):
            raise ValueError(
                f'{type(self).__name__} starts at factor 0, but a scheduler '
                f'listed before it has already changed {self.param_name} at '
                'step 0, and multiplying by 0 would lose its factor: list the '
                'warm-up from 0 first in param_scheduler (or start it at a '
                'small factor such as 1e-3)')

    def value_at(self, step: int) -> list[float]:
        """Each group's value after ``step`` steps when this scheduler acts
        alone (``step`` 0 is the value after construction)."""
        if step < self.begin:
            return list(self.base_values)
        factor = self.factor_at(min(step, self.end - 1) - self.begin)
        return [base * factor for base in self.base_values]


class LinearRampScheduler(FactorScheduler):
    """Linear ramp of any optimizer value from ``start_factor`` to
    ``end_factor`` of its base value (mmengine's ``LinearParamScheduler``
    numbers), with absolute ``start_lr``/``end_lr`` and olm's ``total_steps``
    as alternatives. See :class:`mmlr.schedulers.LinearLR` for the
    arguments."""

    time_args = ('begin', 'end', 'total_steps')
    setting_keys = ('begin', 'end', 'by_epoch', 'start_factor', 'end_factor')
    default_start_factor = 1.0 / 3
    default_end_factor = 1.0

    def __init__(self, optimizer, param_name: str,
                 start_factor: float | None = None,
                 end_factor: float | None = None, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False, *, start_lr: float | None = None,
                 end_lr: float | None = None,
                 total_steps: int | None = None):
        self.start_factor = self._resolve_factor(
            optimizer, 'start', start_factor, start_lr,
            self.default_start_factor)
        self.end_factor = self._resolve_factor(optimizer, 'end', end_factor,
                                               end_lr, self.default_end_factor)
        if total_steps is not None:
            if end != INF:
                raise ValueError('give either total_steps or end, not both '
                                 f'(total_steps={total_steps}, end={end})')
            if isinstance(total_steps, bool) or not isinstance(
                    total_steps, int) or total_steps < 0:
                raise ValueError('total_steps must be an int >= 0, got '
                                 f'{total_steps!r}')
            # olm: values at t = 0..total_steps, the last one reached at
            # step total_steps, then held.
            end = begin + total_steps + 1
        if end >= INF:
            raise ValueError(
                f'{type(self).__name__} needs end (or total_steps): a ramp '
                'over 1e9 steps is never intended. In a Runner, end defaults '
                'to max_epochs/max_iters.')
        super().__init__(optimizer, param_name, begin, end, last_step,
                         by_epoch, verbose)

    @staticmethod
    def _resolve_factor(optimizer, which: str, factor, lr, default) -> float:
        if factor is not None and lr is not None:
            raise ValueError(
                f'give either {which}_factor or {which}_lr, not both '
                f'({which}_factor={factor}, {which}_lr={lr})')
        if lr is not None:
            base = base_lr_of(optimizer)
            check_factor(f'{which}_lr', lr, high=float('inf'))
            return check_factor(
                f'{which}_lr / optimizer lr ({lr} / {base})', lr / base)
        return check_factor(f'{which}_factor',
                            default if factor is None else factor)

    @property
    def ramp_length(self) -> int:
        """Steps from the first to the last value of the ramp."""
        return self.end - self.begin - 1

    def factor_at(self, t: int) -> float:
        if self.ramp_length == 0:
            # A one-step window has nothing to ramp: it is the last step,
            # so it takes end_factor (mmengine keeps start_factor forever).
            return self.end_factor
        progress = min(t, self.ramp_length) / self.ramp_length
        return self.start_factor + (self.end_factor -
                                    self.start_factor) * progress
