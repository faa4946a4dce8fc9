"""Checks that keep a run's schedulers honest on resume and with plateaus."""
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..registry import HOOKS
from ..schedulers.reduce import ReduceOnPlateauScheduler


def scheduler_lists(runner) -> dict:
    """``runner.param_schedulers`` as ``{optimizer name: [schedulers]}``."""
    schedulers = runner.param_schedulers
    if schedulers is None:
        return {}
    if isinstance(schedulers, dict):
        return dict(schedulers)
    return {'': list(schedulers)}


@HOOKS.register_module()
class SchedulerCheckHook(Hook):
    """Make resuming and plateau schedules behave as an uninterrupted run.

    ``tools/train.py`` adds it to every run; with another entry point add
    ``custom_hooks = [dict(type='mmlr.SchedulerCheckHook')]``. It:

    - refuses a resume whose checkpoint holds a different number of
      schedulers, or schedulers of other types, than the config (mmengine
      pairs them with ``zip`` and silently drops the rest);
    - warns at the start of training when a :class:`~mmlr.ReduceLR`
      monitors a validation metric but the run has no validation loop;
    - after a resume, runs the validation that the checkpoint missed:
      mmengine saves a checkpoint just *before* that epoch's (iteration's)
      validation, so without it a plateau schedule resumes one evaluation
      late (and ``ReduceLR`` warns). Whether one followed the checkpoint is
      the train loop's own rule (``val_begin``, ``val_interval``,
      ``dynamic_intervals``). The model is the checkpoint's, so the metric
      is the one the uninterrupted run saw.

    Example:
        >>> custom_hooks = [dict(type='mmlr.SchedulerCheckHook')]
    """

    priority = 'VERY_LOW'
    #: tells :class:`~mmlr.ReduceLR` not to warn about the missed validation
    replays_missed_validation = True

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # load_from: fine-tuning from weights, not a resume
        saved = checkpoint.get('param_schedulers')
        if saved is None:
            return
        saved = saved if isinstance(saved, dict) else {'': saved}
        for name, schedulers in scheduler_lists(runner).items():
            states = saved.get(name, [])
            where = f' of optimizer {name!r}' if name else ''
            if len(states) != len(schedulers):
                raise ValueError(
                    f'cannot resume: the config has {len(schedulers)} '
                    f'param_scheduler entries{where} '
                    f'({[type(s).__name__ for s in schedulers]}) but the '
                    f'checkpoint has {len(states)}; resume with the config '
                    'the run was started with, or use load_from to start a '
                    'new schedule from its weights')
            for i, (scheduler, state) in enumerate(zip(schedulers, states)):
                expected = set(scheduler.state_dict())
                if isinstance(state, dict) and set(state) != expected:
                    raise ValueError(
                        f'cannot resume: param_scheduler[{i}]{where} is '
                        f'{type(scheduler).__name__} in the config but the '
                        'checkpoint holds the state of another scheduler '
                        f'(keys {sorted(state)})')

    def before_train(self, runner) -> None:
        # a plateau schedule may run inside GroupSelect (its ``scheduler``)
        plateaus = [
            s for schedulers in scheduler_lists(runner).values()
            for s in schedulers if isinstance(
                getattr(s, 'scheduler', s), ReduceOnPlateauScheduler)
            and not s.watches_training
        ]
        if not plateaus:
            return
        if runner.val_loop is None:
            print_log(
                f'{type(plateaus[0]).__name__} monitors '
                f'{plateaus[0].monitor!r}, a validation metric, but this '
                'run has no validation (val_dataloader/val_cfg): the lr '
                'will never be reduced', logger='current', level=30)
            return
        if getattr(runner, '_resume', False) and any(
                s.missed_validation(runner) for s in plateaus):
            print_log(
                'Resumed from a checkpoint saved before its validation: '
                'validating once so plateau schedules see that metric',
                logger='current')
            runner.val_loop.run()
