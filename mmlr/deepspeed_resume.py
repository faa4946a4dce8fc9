"""Resuming under DeepSpeed: what the optimizer groups held before
DeepSpeed loaded a checkpoint, and a changed group layout refused before
DeepSpeed reads its optimizer state.

DeepSpeed's engine loads the optimizer's groups (their lrs, weight decays,
``initial_lr``...) and their flat state before mmengine's hooks hear of the
checkpoint. :class:`~mmlr.OptimizerResumeHook` needs the groups as the
config built them to make a resumed run follow the config: the strategy
keeps copies of them (:func:`groups_as_built`). DeepSpeed restores each
group's state by position; when the config's groups hold other parameters
than the checkpoint's (``freeze``, a changed grouping), it fails deep inside
with a message about another setting, or loads the state onto other
tensors. DeepSpeed records each group's parameter names in its checkpoint
(``param_shapes``, for its own ``zero_to_fp32``): they are compared when
that file is read (:func:`changed_layout_refused`).
"""
import copy
from contextlib import contextmanager
from typing import Iterator


def groups_as_built(optim_wrapper) -> list[dict] | None:
    """Copies of the settings of every group of ``optim_wrapper`` (its base
    group last), without tensors; ``None`` without an optim wrapper."""
    if optim_wrapper is None:
        return None
    return [{k: copy.deepcopy(v) for k, v in group.items() if k != 'params'}
            for group in optim_wrapper.param_groups]


def layout_change(saved: list, current: list) -> str | None:
    """How the groups' parameter names ``current`` differ from ``saved``
    (each a list of one name collection per group), or ``None``. The order
    inside a group is DeepSpeed's to choose (it depends on the number of
    ranks), so groups are compared as sets."""
    if len(saved) != len(current):
        return f'{len(saved)} groups then, {len(current)} now'
    for i, (then, now) in enumerate(zip(saved, current)):
        new, gone = sorted(set(now) - set(then)), sorted(set(then) - set(now))
        if new or gone:
            moved = [f'{len(names)} {what} (e.g. {names[0]!r})'
                     for names, what in ((new, 'new in it'),
                                         (gone, 'no longer in it'))
                     if names]
            return f'group {i}: ' + ', '.join(moved)
    return None


@contextmanager
def changed_layout_refused(engine) -> Iterator[None]:
    """While DeepSpeed's ``engine`` loads a checkpoint, refuse it when its
    optimizer groups held other parameters than the engine's do now.

    Raises:
        ValueError: Naming the first group that differs and the fix.
    """
    read = engine.checkpoint_engine.load

    def read_and_check(path, *args, **kwargs):
        state = read(path, *args, **kwargs)
        saved = state.get('param_shapes') if isinstance(state, dict) else None
        if saved and engine.optimizer is not None:
            change = layout_change(saved, engine._get_zero_param_shapes())
            if change:
                raise ValueError(
                    'cannot resume: the optimizer groups the config builds '
                    'hold other parameters than the checkpoint\'s ('
                    f'{change}); DeepSpeed restores the optimizer state by '
                    'group position, not by parameter name: resume with the '
                    'freeze and paramwise_cfg the checkpoint was written '
                    'with')
        return state

    engine.checkpoint_engine.load = read_and_check
    try:
        yield
    finally:
        engine.checkpoint_engine.load = read


__all__ = ['groups_as_built', 'layout_change', 'changed_layout_refused']
