"""Reduce an optimizer value when a metric stops improving: the engine
behind :class:`~mmlr.ReduceLR` (``reduce_lr.py``)."""
import logging
import math
from numbers import Real

from mmengine.logging import MessageHub, print_log
from mmengine.optim.scheduler.param_scheduler import INF
from mmengine.runner import EpochBasedTrainLoop

from .base import ResumableScheduler, check_factor
from .resume_validation import iteration_before_validation, resuming_runner

TRAIN_PREFIX = 'train/'


class ReduceOnPlateauScheduler(ResumableScheduler):
    """Plateau logic for any optimizer value; see :class:`ReduceLR`."""

    need_val_args = True  # mmengine's ParamSchedulerHook passes val metrics
    time_args = ('begin', 'end', 'check_interval')
    progress_keys = ResumableScheduler.progress_keys + (
        'best', 'num_bad_checks', 'cooldown_counter', 'num_checks',
        'last_checked_iter', 'last_metric_iter')
    setting_keys = ('begin', 'end', 'by_epoch', 'monitor', 'mode', 'factor',
                    'patience', 'threshold', 'threshold_mode', 'cooldown',
                    'min_values', 'eps', 'strict', 'check_interval')

    def __init__(self, optimizer, param_name: str, monitor: str = 'loss',
                 mode: str = 'min', factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = 'rel',
                 cooldown: int = 0, min_value: float | list = 0.0,
                 eps: float = 1e-8, strict: bool = True,
                 check_interval: int = 1, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f'monitor must be a metric name, got {monitor!r}')
        if mode not in ('min', 'max'):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ('rel', 'abs'):
            raise ValueError("threshold_mode must be 'rel' or 'abs', got "
                             f'{threshold_mode!r}')
        if isinstance(check_interval, bool) or not isinstance(
                check_interval, int) or check_interval < 1:
            raise ValueError(
                f'check_interval must be an int >= 1, got {check_interval!r}')
        for key, value in (('patience', patience), ('cooldown', cooldown)):
            if isinstance(value, bool) or not isinstance(value,
                                                         int) or value < 0:
                raise ValueError(f'{key} must be an int >= 0, got {value!r}')
        if not by_epoch and not monitor.startswith(TRAIN_PREFIX):
            raise ValueError(
                f'monitor={monitor!r} is a validation metric, which arrives '
                'only to by_epoch=True schedulers (also in an iteration-based '
                'loop); use by_epoch=True, or monitor a training scalar such '
                f"as '{TRAIN_PREFIX}loss'")
        self.monitor = monitor
        self.mode = mode
        self.factor = check_factor('factor', factor, open_low=True,
                                   open_high=True)
        self.patience = patience
        self.threshold = check_factor('threshold', threshold,
                                      high=float('inf'))
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.eps = check_factor('eps', eps, high=float('inf'))
        self.strict = strict
        self.check_interval = check_interval
        self.min_values = self._per_group_min(optimizer, min_value)
        self.best = math.inf if mode == 'min' else -math.inf
        self.num_bad_checks = 0
        self.cooldown_counter = 0
        self.num_checks = 0
        self.last_checked_iter = 0
        self.last_metric_iter = -1  # training iteration of the last metric
        self._warned_missing = False
        self._hub = None
        # a training scalar, checked at the steps without metrics
        self.watches_training = monitor.startswith(TRAIN_PREFIX)
        super().__init__(optimizer, param_name, begin, end, last_step,
                         by_epoch, verbose)

    @staticmethod
    def _per_group_min(optimizer, min_value) -> list[float]:
        groups = optimizer.param_groups
        # An OptimWrapper with several groups adds a pseudo group
        # (base_param_settings) after the real ones.
        real = getattr(optimizer, 'optimizer', optimizer).param_groups
        if isinstance(min_value, (list, tuple)):
            if len(min_value) != len(real):
                raise ValueError(
                    f'min_lr/min_value has {len(min_value)} entries but the '
                    f'optimizer has {len(real)} param groups')
            values = [check_factor('min_lr', v, high=math.inf)
                      for v in min_value]
            return values + values[-1:] * (len(groups) - len(real))
        return [check_factor('min_lr', min_value, high=math.inf)] * len(groups)

    def missed_validation(self, runner) -> bool:
        """Whether the resumed ``runner`` validates right after the step its
        checkpoint was written at, and this scheduler's state (as loaded)
        lacks the check of that validation."""
        if self.watches_training:
            return False  # checked at the step itself, before the save
        iteration = iteration_before_validation(runner)
        return iteration is not None and self.last_metric_iter != iteration \
            and self._in_window(max(self._global_step - 1, 0))

    def load_state_dict(self, state_dict: dict) -> None:
        """Load progress as the base class does. If the Runner resuming
        this state will not run the validation its checkpoint was written
        before (no hook replays it), say in one warning what is lost and
        how to fix it."""
        super().load_state_dict(state_dict)
        runner = resuming_runner()
        if runner is None or not self.missed_validation(runner) or any(
                getattr(hook, 'replays_missed_validation', False)
                for hook in runner.hooks):
            return
        loop = runner.train_loop
        point = f'epoch {loop.epoch}' if isinstance(
            loop, EpochBasedTrainLoop) else f'iteration {loop.iter}'
        print_log(
            f'{type(self).__name__}: the checkpoint of {point} was written '
            'before the validation that follows it, so this resumed run '
            f'never checks that validation\'s {self.monitor!r}: lr reductions '
            'can come one validation later than in an uninterrupted run. To '
            "run that validation on resume, add dict(type='mmlr."
            "SchedulerCheckHook') to the config's custom_hooks (mmlr's "
            'tools/train.py adds it)', logger='current', level=logging.WARNING)

    def _get_value(self) -> list[float]:
        return [g[self.param_name] for g in self.optimizer.param_groups]

    @property
    def _last_value(self) -> list[float]:
        """The groups' values, read when asked for (``get_last_value()``,
        ``state_dict()``) rather than copied at every step as mmengine's
        schedulers do: this scheduler changes them only when it reduces."""
        return self._get_value()

    @_last_value.setter
    def _last_value(self, value: list) -> None:
        pass  # always read from the groups (a checkpoint's copy included)

    def step(self, metrics: dict | None = None) -> None:
        """Without ``metrics``: the end of one epoch (``by_epoch``) or
        iteration, which is when a training scalar is checked. With
        ``metrics`` (after validation): check the monitored metric."""
        if metrics is None:
            self._global_step += 1
            if not self.watches_training:
                return  # counted only, as mmengine's plateau scheduler
            finished = self._global_step - 1  # the step that just ended
            if finished >= 0 and self._in_window(finished) and (
                    self._global_step - self.begin) % self.check_interval == 0:
                self._check(self._training_mean())
        elif not isinstance(metrics, dict):
            raise TypeError(
                f'metrics must be a dict, got {type(metrics).__name__}')
        elif not self.watches_training and self.begin <= max(
                self._global_step - 1, 0) < self.end:  # _in_window, inlined
            if self.monitor in metrics:
                self._check(metrics[self.monitor])
                iteration = self._message_hub().get_info('iter')
                self.last_metric_iter = -1 if iteration is None else int(
                    iteration)
            elif self.strict:
                raise KeyError(
                    f'ReduceLR monitors {self.monitor!r}, which is not among '
                    f'the validation metrics {sorted(metrics)}; set monitor '
                    'to one of them, or strict=False to skip')
            elif not self._warned_missing:
                self._warned_missing = True
                print_log(
                    f'ReduceLR: {self.monitor!r} is not among the validation '
                    f'metrics {sorted(metrics)}; not reducing (strict=False)',
                    logger='current', level=logging.WARNING)

    def _in_window(self, finished: int) -> bool:
        # _global_step counts completed epochs (iterations), so the one that
        # just finished is _global_step - 1. In an iteration-based loop
        # mmengine never ends an epoch before the last iteration: the whole
        # run is epoch 0 for a validation metric.
        return self.begin <= finished < self.end

    def _message_hub(self) -> MessageHub:
        # The Runner's, current when this scheduler first reads it (a
        # scheduler lives in one run; looking it up costs a lock each time).
        if self._hub is None:
            self._hub = MessageHub.get_current_instance()
        return self._hub

    def _training_mean(self) -> float | None:
        hub = self._message_hub()
        now = hub.get_info('iter', None)
        if self.monitor not in hub.log_scalars or now is None:
            return None
        count = max(1, now + 1 - self.last_checked_iter)
        self.last_checked_iter = now + 1
        return float(hub.get_scalar(self.monitor).mean(count))

    def _check(self, value) -> None:
        if value is None:
            return
        if type(value) is not float:
            if isinstance(value, bool) or not (isinstance(value, Real)
                                               or hasattr(value, 'item')):
                raise TypeError(
                    f'{self.monitor} must be a number, got {value!r}')
            value = float(value)
        self.num_checks += 1
        if not math.isfinite(value):
            print_log(
                f'ReduceLR: {self.monitor} = {value}; counted as no '
                'improvement', logger='current', level=logging.WARNING)
            self.num_bad_checks += 1
        elif self._is_better(value):
            self.best = value
            self.num_bad_checks = 0
        else:
            self.num_bad_checks += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_checks = 0
        if self.num_bad_checks > self.patience:
            self._reduce()
            self.cooldown_counter = self.cooldown
            self.num_bad_checks = 0

    def _is_better(self, value: float) -> bool:
        # PyTorch's ReduceLROnPlateau comparisons; best starts at +-inf.
        if self.mode == 'min' and self.threshold_mode == 'rel':
            return value < self.best * (1.0 - self.threshold)
        if self.mode == 'min':
            return value < self.best - self.threshold
        if self.threshold_mode == 'rel':
            return value > self.best * (1.0 + self.threshold)
        return value > self.best + self.threshold

    def _reduce(self) -> None:
        for i, group in enumerate(self.optimizer.param_groups):
            old = group[self.param_name]
            new = max(old * self.factor, self.min_values[i])
            if old - new > self.eps:
                group[self.param_name] = new
                self.print_value(self.verbose, i, new)
