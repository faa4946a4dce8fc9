"""``CooldownLR``: decay each group's lr at the end of a run, to a floor that
is a ratio of the group's own lr (the "decay" of warm-up–stable–decay)."""
import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF

from ..registry import PARAM_SCHEDULERS
from .base import check_factor
from .ramp import FactorScheduler

#: Progress ``p`` through the cooldown (0 to 1) -> the share of the distance
#: from the floor to the full value still left (Hägele et al. 2024).
COOLDOWN_SHAPES = {
    'linear': lambda p: 1.0 - p,
    'cosine': lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),
    '1-sqrt': lambda p: 1.0 - math.sqrt(p),
}


class CooldownScheduler(FactorScheduler):
    """Chainable cooldown of any optimizer value from its full value to
    ``min_lr_ratio`` of it, over ``[begin, end)`` with a shape from
    :data:`COOLDOWN_SHAPES`. See :class:`CooldownLR` for the arguments."""

    time_args = ('begin', 'end', 'length')
    setting_keys = ('begin', 'end', 'by_epoch', 'shape', 'min_lr_ratio')
    # The papers' cooldown reaches its floor at ``end``, one step after its
    # window (training with the Runner's default ``end`` never uses a step
    # at the floor). A run that goes on holds the floor from there, not the
    # window's last value.
    writes_at_end = True

    def __init__(self, optimizer, param_name: str, shape: str = 'linear',
                 min_lr_ratio: float = 0.0, begin: int | None = None,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False, *, length: int | None = None,
                 fraction: float | None = None):
        if shape not in COOLDOWN_SHAPES:
            raise ValueError(
                f'{type(self).__name__}: shape must be one of '
                f'{", ".join(map(repr, COOLDOWN_SHAPES))}, got {shape!r}')
        self.shape = shape
        self.min_lr_ratio = check_factor('min_lr_ratio', min_lr_ratio)
        begin = cooldown_begin(type(self).__name__, begin, end, length,
                               fraction, 'epochs' if by_epoch else
                               'iterations', whole=True)
        super().__init__(optimizer, param_name, begin, end, last_step,
                         by_epoch, verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=None, end=INF, length=None,
                              fraction=None, **kwargs):
        # Checked in the config's epochs first, so that an error names the
        # numbers the user wrote rather than their iteration counts.
        cooldown_begin(cls.__name__, begin, end, length, fraction, 'epochs',
                       whole=False)
        return super().build_iter_from_epoch(
            *args, begin=begin, end=end, length=length, fraction=fraction,
            **kwargs)

    @property
    def length(self) -> int:
        """Steps of the cooldown; the floor is the value at ``end``."""
        return self.end - self.begin

    def factor_at(self, t: int) -> float:
        progress = min(t, self.length) / self.length
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * \
            COOLDOWN_SHAPES[self.shape](progress)

    def value_at(self, step: int) -> list[float]:
        if step < self.begin:
            return list(self.base_values)
        factor = self.factor_at(min(step, self.end) - self.begin)
        return [base * factor for base in self.base_values]


def cooldown_begin(name: str, begin, end, length, fraction, unit: str,
                   whole: bool) -> int:
    """Where a cooldown begins: ``begin`` as given, or ``length`` steps (or
    ``fraction`` of the steps ``0 .. end``) before ``end``.

    Args:
        name (str): The scheduler's class name, for messages.
        begin, end, length, fraction: The scheduler's arguments.
        unit (str): What the numbers count, for messages.
        whole (bool): Whether ``length`` must be a whole number (False for
            epochs that ``convert_to_iter_based`` turns into iterations).

    Returns:
        int: The first step of the cooldown (``begin`` unchanged when no
        ``length`` or ``fraction`` is given; 0 when nothing is).
    """
    given = [key for key, value in (('begin', begin), ('length', length),
                                    ('fraction', fraction))
             if value is not None]
    if len(given) > 1:
        raise ValueError(
            f'{name}: give one of begin, length and fraction to place the '
            f'cooldown, not {" and ".join(given)}')
    if end >= INF:
        raise ValueError(
            f'{name} needs end: the cooldown ends there. In a Runner, end '
            'defaults to max_epochs/max_iters (the end of training).')
    if length is not None:
        number = int if whole else (int, float)
        if isinstance(length, bool) or not isinstance(
                length, number) or not length > 0:
            kind = 'an int >= 1' if whole else 'a number > 0'
            raise ValueError(f'{name}: length must be {kind} ({unit} of '
                             f'cooldown before end), got {length!r}')
        if length > end:
            raise ValueError(
                f'{name}: length={length} {unit} is longer than the run: '
                f'end={end} (the end of training unless end is set), so the '
                f'cooldown would begin at {end - length}')
        return end - length
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(
                fraction, (int, float)) or not 0 < fraction <= 1:
            longer = isinstance(fraction, (int, float)) and fraction > 1
            raise ValueError(
                f'{name}: fraction must be in (0, 1], the share of the run '
                f'(0 to end={end} {unit}) the cooldown takes, got '
                f'{fraction!r}' +
                (': a cooldown longer than the run' if longer else ''))
        steps = math.floor(fraction * end + 0.5)
        if whole and steps < 1:
            raise ValueError(
                f'{name}: fraction={fraction} of end={end} {unit} is less '
                'than one step; give a larger fraction, or length')
        return end - steps if whole else 0
    return 0 if begin is None else begin


@PARAM_SCHEDULERS.register_module()
class CooldownLR(LRSchedulerMixin, CooldownScheduler):
    """Decay each group's lr over ``[begin, end)`` from its full value to
    ``min_lr_ratio`` of it, in a ``linear``, ``cosine`` or ``1-sqrt`` shape.

    The cooldown of a warm-up–stable–decay (WSD) schedule: train at a
    constant lr, then cool down over the last part of the run. ``end``
    defaults to the end of training (a Runner fills it in from
    ``max_epochs``/``max_iters``, as for mmengine's schedulers), and
    ``length`` or ``fraction`` places ``begin`` that far before it, so the
    cooldown follows a changed run length. With ``T = end - begin`` and
    ``r = min_lr_ratio``, step ``begin + t`` has the factor
    ``r + (1 - r) * s(t / T)`` of each group's lr, where ``s(p)`` is
    ``1 - p`` (linear), ``(1 + cos(pi p)) / 2`` (cosine) or ``1 - sqrt(p)``
    (1-sqrt, Hägele et al. 2024). The floor ``r`` is the value at ``end``,
    as in the papers: a run ending at ``end`` never trains at the floor
    (with a floor of 0, no step is wasted), and a run that goes on holds
    it. The floor is a ratio, so layer-decayed groups keep their ratios to
    the end (mmengine's absolute ``eta_min`` pulls them together). Chains
    with the other schedulers by multiplication, like mmlr's ramps.

    Args:
        optimizer (Optimizer | OptimWrapper): Wrapped optimizer.
        shape (str): ``'linear'``, ``'cosine'`` or ``'1-sqrt'``. Defaults
            to ``'linear'``.
        min_lr_ratio (float): The floor, as a ratio of each group's lr, in
            [0, 1]. Defaults to 0.
        begin (int, optional): First step of the cooldown. Give at most one
            of ``begin``, ``length`` and ``fraction``; with none, the
            cooldown spans the whole run from step 0.
        end (int): The step at which the floor is reached. Required outside
            a Runner, which fills in ``max_epochs``/``max_iters``.
        last_step (int): Must be -1; resume with ``load_state_dict``.
        by_epoch (bool): Count epochs (True) or iterations. Defaults to True.
        verbose (bool): Log every change. Defaults to False.
        length (int, optional): Steps of cooldown before ``end``; with
            ``convert_to_iter_based``, epochs (fractions allowed), scaled.
        fraction (float, optional): Share of the run, steps 0 to ``end``,
            that the cooldown takes, in (0, 1]; rounded to the nearest step
            (after ``convert_to_iter_based``, to the nearest iteration).

    Example:
        >>> # WSD: warm up over 1 epoch, hold, cool down over the last 20 %
        >>> param_scheduler = [
        ...     dict(type='mmlr.LinearLR', start_factor=0.01, end=1,
        ...          by_epoch=True, convert_to_iter_based=True),
        ...     dict(type='CooldownLR', shape='1-sqrt', fraction=0.2,
        ...          by_epoch=True, convert_to_iter_based=True)]
    """


__all__ = ['CooldownLR', 'COOLDOWN_SHAPES']
