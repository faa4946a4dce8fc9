"""The chainable core of mmlr's linear schedules: a factor curve applied on
top of whatever the other schedulers in the list do."""
from mmengine.logging import print_log
from mmengine.optim.scheduler.param_scheduler import INF

from .base import ResumableScheduler, base_lr_of, check_factor
from .ramp_memory import ramp_memory


class FactorScheduler(ResumableScheduler):
    """Multiply each group's value by ``factor_at(t)``, ``t`` counted from
    ``begin``, and compose with other schedulers by multiplication.

    Each step divides out the factors applied last and applies the new one,
    so changes other schedulers make in between carry through, exactly as
    mmengine's ``LinearLR`` composes (``lr * f(t) / f(t-1)``). The ramps of
    one optimizer share a :class:`RampMemory` of the value beneath all their
    factors, so a factor of 0 (a warm-up from 0, a decay to 0) never divides
    by zero and hides nothing from the other ramps: a list of ramps gives
    the product of their factors in any order. Another scheduler that
    changes the value while a ramp holds it at 0 multiplies 0, and its
    change is lost; the case visible when the list is built (a ramp starting
    at 0 listed after a scheduler that already changed the value at step 0)
    is refused. Subclasses define :meth:`factor_at`; :meth:`value_at` is the
    closed form for checks and plots.
    """

    progress_keys = ResumableScheduler.progress_keys + ('_applied_factor',
                                                        '_value_beneath')

    def __init__(self, optimizer, param_name: str, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False):
        self._applied_factor: float | None = None
        self._memory, self._groups = ramp_memory(optimizer, param_name)
        self._memory.join(self, self._groups)
        try:
            super().__init__(optimizer, param_name, begin, end, last_step,
                             by_epoch, verbose)
        except Exception:
            self._memory.leave(self)
            raise

    @property
    def _value_beneath(self) -> list:
        """Each group's value beneath the factors of all ramps (saved in
        every ramp's state; they are equal)."""
        return self._memory.beneath_of(self._groups)

    @_value_beneath.setter
    def _value_beneath(self, beneath: list) -> None:
        self._memory.restore(self._groups, beneath)

    def load_state_dict(self, state_dict: dict) -> None:
        if '_underlying' in state_dict and '_value_beneath' not in state_dict:
            # Written by mmlr 0.1, whose ramps each kept the value beneath
            # their own factor: the same as beneath all ramps when this is
            # the only one.
            others = [r() for r, _ in self._memory.ramps if r() is not self]
            if others:
                raise ValueError(
                    f'{type(self).__name__}: this checkpoint was written by '
                    'an older mmlr whose ramps kept separate state; with '
                    f'{len(others) + 1} mmlr ramps on one optimizer it '
                    'cannot be resumed exactly. Resume it with mmlr 0.1, '
                    'or start from its weights with load_from')
            state_dict = {**state_dict,
                          '_value_beneath': state_dict['_underlying']}
        super().load_state_dict(state_dict)

    def factor_at(self, t: int) -> float:
        """Factor for the ``t``-th step inside the window (``t >= 0``)."""
        raise NotImplementedError

    #: whether the step at ``end`` still writes (a cooldown's floor)
    writes_at_end = False

    def step(self) -> None:
        """mmengine's ``step()`` (the first one, and every one when
        ``verbose``, is mmengine's own, with its checks of the optimizer's
        stepping); otherwise without mmengine's per-group ``print_value``
        call."""
        if self._global_step == 0 or self.verbose:
            super().step()
        else:
            self._global_step += 1
            if self.begin <= self._global_step < self.end:
                self._write_values()
        if self.writes_at_end and self._global_step == self.end:
            self._write_values()
        name = self.param_name
        self._last_value = [
            group[name] for group in self.optimizer.param_groups]

    def _write_values(self) -> None:
        self.last_step += 1
        values = self._get_value()
        name = self.param_name
        for group, value in zip(self.optimizer.param_groups, values):
            group[name] = value
        if self.verbose:
            for i, value in enumerate(values):
                self.print_value(True, i, value)

    def _get_value(self) -> list:
        self._memory.take_in(self._groups, self.optimizer.param_groups,
                             self.param_name)
        if self._global_step == 0:
            self._check_zero_start()
        self._applied_factor = self.factor_at(self.last_step)
        return self._memory.values(self._groups)

    def _check_zero_start(self) -> None:
        # Another scheduler listed earlier changed the value at step 0: it
        # multiplies what it finds, so whatever it changes while this ramp
        # holds the value at 0 (mmengine's LinearLR at the next step,
        # ConstantLR when it ends) would be lost. The ramps' own changes are
        # not in question: they are divided out of ``beneath`` (up to
        # rounding, hence the tolerance: a scheduler that multiplied by 1
        # changed nothing).
        if self.factor_at(0) != 0:
            return
        if any(abs(value - base) > 1e-9 * abs(base) for value, base
               in zip(self._memory.beneath_of(self._groups),
                      self.base_values)):
            raise ValueError(
                f'{type(self).__name__} starts at factor 0, but a scheduler '
                f'listed before it has already changed {self.param_name} at '
                'step 0; it multiplies the value it finds, so its changes '
                f'while {self.param_name} is 0 would be lost. Use mmlr\'s '
                'ramps for it (mmlr.LinearLR instead of mmengine\'s '
                'LinearLR or ConstantLR: they compose exactly in any '
                'order), or start this one at a small factor such as 1e-3')

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
            check_total_steps(total_steps)
            # olm: values at t = 0..total_steps, the last one reached at
            # step total_steps, then held. total_steps sets the window: an
            # end beside it is the one a Runner fills in from max_epochs or
            # max_iters (which it cannot tell from one the config wrote).
            if end != INF and end != begin + total_steps + 1:
                print_log(
                    f'{type(self).__name__}: total_steps={total_steps} sets '
                    f'end={begin + total_steps + 1}; end={end} (a Runner '
                    'fills it in from max_epochs/max_iters) is not used',
                    logger='current')
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
            if base == 0:
                raise ValueError(
                    f'{which}_lr={lr} is a fraction of the optimizer lr, '
                    f'which is 0: give the optimizer an lr > 0 (optimizer.lr '
                    f'in the config), or use {which}_factor')
            return check_factor(
                f'{which}_lr / optimizer lr ({lr} / {base})', lr / base)
        return check_factor(f'{which}_factor',
                            default if factor is None else factor)

    @classmethod
    def _scale_time(cls, key: str, value, epoch_length: int):
        if key == 'total_steps':  # checked in epochs, before scaling
            check_total_steps(value, unit='epochs')
        return super()._scale_time(key, value, epoch_length)

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


def check_total_steps(total_steps, unit: str = 'steps') -> None:
    """``total_steps`` must be a whole number of steps >= 0; in epochs
    (``convert_to_iter_based``) a fraction is allowed."""
    number = int if unit == 'steps' else (int, float)
    if isinstance(total_steps, bool) or not isinstance(
            total_steps, number) or not total_steps >= 0:
        kind = 'an int' if unit == 'steps' else 'a number'
        raise ValueError(
            f'total_steps must be {kind} >= 0 ({unit} from the first to the '
            f'last value of the ramp), got {total_steps!r}')
