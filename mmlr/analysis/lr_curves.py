"""Step a config's real schedulers through a training run without training,
in the order mmengine's loops and ``ParamSchedulerHook`` call them, and
record every group's value at every iteration."""
import math
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from mmengine.logging import MessageHub

from .schedule_build import Track
from ..schedulers import GroupSelect
from .train_length import TrainLength


@dataclass
class Window:
    """Where one scheduler of optim wrapper ``track`` acts: iterations
    ``[begin, end)`` of the run (``end`` may lie beyond it or be infinite);
    ``plateau`` for schedulers stepped on validation metrics."""

    track: str
    name: str
    begin: int
    end: float
    by_epoch: bool
    plateau: bool
    groups: tuple | None = None  # the groups a GroupSelect moves


@dataclass
class LrCurves:
    """Recorded values: ``values[t, c]`` is curve ``c``'s value during
    iteration ``t`` (what ``optimizer.step()`` of iteration ``t`` uses).

    Args:
        param (str): ``'lr'``, ``'momentum'`` or ``'weight_decay'``.
        values (np.ndarray): ``(max_iters, curves)``, one column per
            distinct group.
        labels (list[str]): Legend label per curve.
        layer_ids (list[int | None]): Layer depth per curve (colour).
        group_of (list[int]): For every real group (all tracks), its curve.
        group_names (list[str]): Name of every real group.
        length (TrainLength): The run's counts.
        windows (list[Window]): Every scheduler's window.
        validations (list[int]): Iterations after which validation ran.
    """

    param: str
    values: np.ndarray
    labels: list
    layer_ids: list
    group_of: list
    group_names: list
    length: TrainLength
    windows: list = field(default_factory=list)
    validations: list = field(default_factory=list)

    def group_values(self) -> np.ndarray:
        """``(max_iters, real groups)``: every group's own column."""
        return self.values[:, self.group_of]


def read_value(group: dict, param: str) -> float:
    """A group's value of ``param``; Adam's momentum is ``betas[0]``."""
    if param in group:
        return group[param]
    if param == 'momentum' and 'betas' in group:
        return group['betas'][0]
    raise KeyError(f'the optimizer groups have no {param!r} (keys: '
                   f'{", ".join(sorted(k for k in group if k != "params"))})')


def simulate(tracks: list[Track], length: TrainLength, param: str = 'lr',
             metrics: list[float] | None = None,
             progress: Callable[[int], None] | None = None) -> LrCurves:
    """Run the schedulers through ``length`` as the Runner's loop would.

    ``EpochBasedTrainLoop``: after every iteration the iteration-based
    schedulers step, after every epoch the epoch-based ones, then a due
    validation feeds the next metric to the plateau schedulers.
    ``IterBasedTrainLoop``: validation follows iterations, and epoch-based
    schedulers step once, after the last iteration. The iteration schedulers
    read from the MessageHub goes into a MessageHub of the simulation's own.

    Args:
        tracks (list[Track]): From :func:`build_tracks`.
        length (TrainLength): From :func:`train_length`.
        param (str): Which value to record. Defaults to ``'lr'``.
        metrics (list[float], optional): One value per validation, fed to
            every plateau scheduler under its ``monitor`` key; validations
            after the list is used up feed nothing.
        progress (callable, optional): Called with the number of
            iterations done, 50 times over the run.

    Example:
        >>> curves = simulate(tracks, length)
        >>> curves.values[0]  # lr of each distinct group at iteration 0
    """
    groups = [g for t in tracks
              for g in t.probe.optimizer.param_groups[:len(t.curves)]]
    values = np.empty((length.max_iters, len(groups)))
    iter_scheds = [s for t in tracks for s in t.schedulers if not s.by_epoch]
    epoch_scheds = [s for t in tracks for s in t.schedulers if s.by_epoch]
    plateau = [s for s in epoch_scheds if getattr(s, 'need_val_args', False)]
    feed = list(metrics or [])
    validations = []

    def validate(iteration: int) -> None:
        validations.append(iteration)
        hub.update_info('iter', iteration)
        if not feed or not plateau:
            return
        value = feed.pop(0)
        for scheduler in plateau:
            scheduler.step({getattr(scheduler, 'monitor', 'loss'): value})

    if all(param in g for g in groups):  # the loop body runs 1e6 times
        def read() -> list:
            return [g[param] for g in groups]
    else:
        def read() -> list:
            return [read_value(g, param) for g in groups]
    steps = length.max_iters
    chunk = max(1, steps // 50)
    reports = set(range(chunk, steps + 1, chunk)) | {steps}
    epoch_ends = range(length.epoch_length, steps + 1,
                       length.epoch_length) if length.by_epoch else []
    checks = [] if length.by_epoch else length.validation_points()
    done = 0
    with _private_message_hub() as hub:
        # Between these stops only the iteration-based schedulers step.
        for stop in sorted(reports.union(epoch_ends, checks)):
            for it in range(done, stop):
                values[it] = read()
                for scheduler in iter_scheds:
                    scheduler.step()
            done = stop
            if length.by_epoch and done % length.epoch_length == 0:
                for scheduler in epoch_scheds:
                    scheduler.step()
                if length.validation_after(done // length.epoch_length):
                    validate(done)
            elif not length.by_epoch and length.validation_after(done):
                validate(done)
            if progress is not None and done in reports:
                progress(done)
        if not length.by_epoch:  # the loop's single epoch ends here
            for scheduler in epoch_scheds:
                scheduler.step()

    offsets = np.cumsum([0] + [len(t.curves) for t in tracks]).tolist()
    group_of = [
        offset + index for track, offset in zip(tracks, offsets)
        for index in track.group_of
    ]
    labels, layer_ids = _labels(tracks)
    names = [
        f'{track.name + "/" if track.name else ""}group{i}'
        for track in tracks for i in range(len(track.group_of))
    ]
    return LrCurves(param, values, labels, layer_ids, group_of, names,
                    length, windows_of(tracks, length), validations)


@contextmanager
def _private_message_hub():
    # mmengine's current instance is the one created last: a fresh one is
    # current while the schedulers step and is removed afterwards, so the
    # caller's (a Runner's) runtime info is left as it was.
    name = f'mmlr_simulate_{uuid.uuid4().hex}'
    try:
        yield MessageHub.get_instance(name)
    finally:
        MessageHub._instance_dict.pop(name, None)


def _labels(tracks: list[Track]) -> tuple[list, list]:
    # "layer 3 (groups 6,7)": the depth colours the curve, the numbers are
    # the optimizer groups (as in tools/param_groups.py) it stands for.
    labels, layer_ids = [], []
    for track in tracks:
        prefix = f'{track.name}: ' if track.name else ''
        for curve, group in enumerate(track.curves):
            members = [str(i) for i, c in enumerate(track.group_of)
                       if c == curve]
            noun = 'group' if len(members) == 1 else 'groups'
            which = f'{noun} {",".join(members)}'
            layer = group.get('layer_id')
            labels.append(f'{prefix}layer {layer} ({which})'
                          if layer is not None else f'{prefix}{which}')
            layer_ids.append(layer)
    return labels, layer_ids


def windows_of(tracks: list[Track], length: TrainLength) -> list[Window]:
    """Each scheduler's :class:`Window` (epochs times the epoch length)."""
    windows = []
    for track in tracks:
        for scheduler in track.schedulers:
            scale = 1
            if scheduler.by_epoch:
                scale = length.epoch_length if length.by_epoch else \
                    length.max_iters
            end = scheduler.end * scale if scheduler.end < 1e9 else math.inf
            selected = getattr(scheduler, 'indices', None)
            windows.append(
                Window(track.name, scheduler_name(scheduler),
                       scheduler.begin * scale, end, scheduler.by_epoch,
                       bool(getattr(scheduler, 'need_val_args', False)),
                       None if selected is None else tuple(selected)))
    return windows


def metrics_coverage(metrics: list[float], validations: list[int]
                     ) -> str | None:
    """What a simulation assumed where ``--metrics`` and the run's
    validations differ in number, or None when every validation got one.

    Example:
        >>> print(metrics_coverage([0.5, 0.6], [45, 90, 135, 180]))
        --metrics has 2 values for 4 validations: the last 2 (from the one
        after iteration 135 on) got no value, so plateau schedulers kept
        their lr there
    """
    given, needed = len(metrics), len(validations)
    if given < needed:
        return (f'--metrics has {given} values for {needed} validations: '
                f'the last {needed - given} (from the one after iteration '
                f'{validations[given]} on) got no value, so plateau '
                'schedulers kept their lr there')
    if given > needed:
        return (f'--metrics has {given} values for {needed} validations: '
                f'the last {given - needed} were not used')
    return None


def scheduler_name(scheduler) -> str:
    """``'CosineAnnealingLR'``; a GroupSelect as its scheduler and selection:
    ``"MultiStepLR(role='backbone')"``."""
    if isinstance(scheduler, GroupSelect):
        return f'{type(scheduler.scheduler).__name__}(' + ', '.join(
            f'{k}={v!r}' for k, v in scheduler.groups.items()) + ')'
    return type(scheduler).__name__
