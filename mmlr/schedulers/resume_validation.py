"""The validation a resumed checkpoint was written just before.

mmengine's ``CheckpointHook`` saves in ``after_train_epoch`` (or
``after_train_iter``) and the train loop validates only after those hooks,
so a checkpoint written at a validation point holds no trace of that
validation. A plateau schedule resumed from it skips one check unless the
validation is run again (``SchedulerCheckHook`` does). These functions read
the train loop's own rule to tell when that is the case.
"""
import bisect
import sys

from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner


def validates_after(done: int, last: int, val_begin: int,
                    milestones: list[int], intervals: list[int]) -> bool:
    """Whether a train loop validates once it has finished ``done`` epochs
    (iterations) of ``last``: mmengine's loops' own rule.

    From ``val_begin`` on, every interval, where
    ``_decide_current_val_interval`` takes the interval of the last
    milestone at or before ``done + 1``; and after the last step. The loops
    hold ``milestones`` (starting at 0) and ``intervals`` as
    ``dynamic_milestones`` and ``dynamic_intervals``.
    """
    interval = intervals[bisect.bisect(milestones, done + 1) - 1]
    return done >= val_begin and (done % interval == 0 or done == last)


def loop_validates_after(loop, done: int) -> bool:
    """:func:`validates_after` for a built mmengine train loop."""
    last = loop.max_epochs if isinstance(
        loop, EpochBasedTrainLoop) else loop.max_iters
    return validates_after(
        done, last, loop.val_begin,
        getattr(loop, 'dynamic_milestones', [0]),
        getattr(loop, 'dynamic_intervals', [loop.val_interval]))


def iteration_before_validation(runner) -> int | None:
    """The training iteration (0-based) right after which the resumed
    ``runner``'s train loop validates before training on, if its checkpoint
    was written at that point; else None.

    None also when training is already complete, when the run has no
    validation, when the train loop is neither of mmengine's two loops, and
    for a checkpoint written in the middle of an epoch (the validation of
    the epoch before it ran before it was written).
    """
    loop = runner.train_loop
    if runner.val_loop is None:
        return None
    if isinstance(loop, EpochBasedTrainLoop):
        done, last = loop.epoch, loop.max_epochs
        at_validation = loop.iter == done * len(loop.dataloader)
    elif isinstance(loop, IterBasedTrainLoop):
        done, last, at_validation = loop.iter, loop.max_iters, True
    else:
        return None
    if not (0 < done < last and at_validation
            and loop_validates_after(loop, done)):
        return None
    return loop.iter - 1


def resuming_runner() -> Runner | None:
    """The mmengine ``Runner`` whose ``resume()`` is on the call stack, or
    None.

    mmengine hands a scheduler no runner, yet only the runner's train loop
    knows whether a validation followed the checkpoint being loaded.
    ``Runner.resume`` calls each scheduler's ``load_state_dict`` itself, so
    the runner is the ``self`` of that frame.
    """
    frame = sys._getframe(1)
    try:
        while frame is not None:
            if frame.f_code.co_name == 'resume':
                owner = frame.f_locals.get('self')
                if isinstance(owner, Runner):
                    return owner
            frame = frame.f_back
        return None
    finally:
        del frame  # a frame referencing itself would outlive the call
