"""What every mmlr scheduler shares: validation, plain-data progress state,
config changes on resume, and ``convert_to_iter_based``."""
import math
from numbers import Integral, Real
from typing import Any

from mmengine.logging import print_log
from mmengine.optim import BaseOptimWrapper
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler


def plain(value: Any) -> Any:
    """``value`` as Python numbers, strings, lists and dicts only, so a
    checkpoint holding it loads with ``torch.load(weights_only=True)``."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, Integral):  # numpy integers
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if hasattr(value, 'item') and getattr(value, 'ndim', None) == 0:
        return plain(value.item())  # numpy or torch scalar
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    raise TypeError(f'cannot store {type(value).__name__} in scheduler state')


def base_lr_of(optimizer) -> float:
    """The lr the optimizer was configured with (``optimizer.lr`` in the
    config), which absolute ``*_lr`` arguments are relative to."""
    if isinstance(optimizer, BaseOptimWrapper):
        optimizer = optimizer.optimizer
    return float(optimizer.defaults['lr'])


class ResumableScheduler(_ParamScheduler):
    """Base of mmlr's schedulers (an mmengine ``_ParamScheduler``).

    Differences from mmengine's base, all about checkpoints and bad input:

    - ``state_dict()`` holds progress only (the attributes named in
      ``progress_keys``) as plain Python data, plus a copy of the settings
      used for nothing but comparison. On ``load_state_dict`` the *current*
      config wins, and every setting that differs from the checkpoint's is
      logged. A state written by another scheduler class is refused.
    - ``begin``/``end`` are checked at construction; ``last_step`` other than
      -1 is refused (resume through ``load_state_dict``).
    - ``build_iter_from_epoch`` scales every argument named in ``time_args``.
    """

    #: arguments measured in steps, scaled by ``convert_to_iter_based``
    time_args: tuple = ('begin', 'end')
    #: attributes saved in checkpoints
    progress_keys: tuple = ('_global_step', 'last_step', '_last_value')
    #: constructor settings compared (never restored) on resume
    setting_keys: tuple = ('begin', 'end', 'by_epoch')

    def __init__(self, optimizer, param_name: str, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False):
        check_step_window(begin, end)
        if last_step != -1:
            raise ValueError(
                f'last_step must be -1, got {last_step}; resume a scheduler '
                'with load_state_dict() (the Runner does this)')
        super().__init__(optimizer, param_name, begin, end, last_step,
                         by_epoch, verbose)

    def settings(self) -> dict:
        return {key: getattr(self, key) for key in self.setting_keys}

    def state_dict(self) -> dict:
        state = {key: plain(getattr(self, key)) for key in self.progress_keys}
        state['type'] = type(self).__name__
        state['settings'] = plain(self.settings())
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        name = type(self).__name__
        if state_dict.get('type') != name:
            found = state_dict.get('type') or 'a scheduler that is not ' \
                'from mmlr (keys: ' + ', '.join(sorted(state_dict)) + ')'
            raise ValueError(
                f'the checkpoint holds the state of {found} where the config '
                f'has mmlr {name}: param_scheduler in the config and in the '
                'checkpoint differ (order, number or types)')
        missing = [k for k in self.progress_keys if k not in state_dict]
        if missing:
            raise ValueError(f'{name} state lacks {missing}')
        saved = state_dict.get('settings', {})
        now = plain(self.settings())
        changed = {
            k: (saved[k], v)
            for k, v in now.items() if k in saved and saved[k] != v
        }
        if changed:
            print_log(
                f'{name}: resuming with settings that differ from the '
                'checkpoint\'s; following the config: ' + ', '.join(
                    f'{k} {old!r} -> {new!r}'
                    for k, (old, new) in changed.items()),
                logger='current')
        for key in self.progress_keys:
            setattr(self, key, state_dict[key])

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=None, end=INF, by_epoch=True,
                              epoch_length=None, **kwargs):
        """Build an iteration-based scheduler from epoch-based arguments,
        scaling ``begin``, ``end`` and every other argument in
        ``time_args`` by ``epoch_length``. A ``begin`` not given stays
        the class's default (a cooldown places itself from ``end``)."""
        if not by_epoch:
            raise ValueError('convert_to_iter_based=True needs by_epoch=True '
                             f'in {cls.__name__}')
        if epoch_length is None or epoch_length <= 0:
            raise ValueError(f'epoch_length must be a positive int, got '
                             f'{epoch_length}')
        times = dict(kwargs, end=end)
        if begin is not None:
            times['begin'] = begin
        for key in cls.time_args:
            if times.get(key) is not None and times[key] != INF:
                times[key] = cls._scale_time(key, times[key], epoch_length)
        return cls(*args, by_epoch=False, **times)

    @classmethod
    def _scale_time(cls, key: str, value, epoch_length: int):
        return int(value * epoch_length)


def check_step_window(begin, end) -> None:
    for key, value in (('begin', begin), ('end', end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f'{key} must be an int number of steps, got {value!r}; for '
                'fractions of an epoch use by_epoch=True with '
                'convert_to_iter_based=True')
    if begin < 0:
        raise ValueError(f'begin must be >= 0, got {begin}')
    if end <= begin:
        raise ValueError(f'end must be larger than begin, got begin={begin}, '
                         f'end={end}')


def check_factor(key: str, value, low: float = 0.0, high: float = 1.0,
                 open_low: bool = False, open_high: bool = False) -> float:
    """Return ``value`` as a float if it lies in the range, else raise a
    ``ValueError`` naming ``key`` and the range."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f'{key} must be a number, got {value!r}')
    value = float(value)
    too_low = value <= low if open_low else value < low
    too_high = value >= high if open_high else value > high
    if too_low or too_high or math.isnan(value):
        left, right = '(' if open_low else '[', ')' if open_high else ']'
        raise ValueError(
            f'{key} must be in {left}{low:g}, {high:g}{right}, got {value}')
    return value
