"""Step a config's real schedulers through a training run without training,
in the order mmengine's loops and ``ParamSchedulerHook`` call them, and
record every distinct group's value at every iteration."""
import math
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from mmengine.logging import MessageHub

from ..schedulers import GroupSelect
from .schedule_build import Track
from .train_length import TrainLength


@dataclass
class Window:
    """Iterations ``[begin, end)`` (``end`` may be infinite) where one
    scheduler of optim wrapper ``track`` acts."""

    track: str
    name: str
    begin: int
    end: float
    plateau: bool  # stepped on validation metrics
    groups: tuple | None = None  # the groups a GroupSelect moves


@dataclass
class LrCurves:
    """Recorded values: ``values[t, c]`` is curve ``c``'s ``param`` during
    iteration ``t`` (what ``optimizer.step()`` of iteration ``t`` uses), a
    curve per distinct group, with its legend ``labels`` and ``layer_ids``;
    ``group_of`` gives every real group's curve and ``group_names`` its name
    (all tracks); then the run's ``length``, every scheduler's ``windows``
    and the iterations after which validation ran."""

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


def simulate(tracks: list[Track], length: TrainLength, param: str = 'lr',
             metrics: list[float] | None = None,
             progress: Callable[[int], None] | None = None) -> LrCurves:
    """Step the schedulers as the Runner's loop would through ``length``.

    After every iteration the iteration-based schedulers step; after every
    epoch the epoch-based ones (an ``IterBasedTrainLoop`` has one epoch,
    ending after its last iteration); then a due validation feeds the next
    of ``metrics`` to the plateau schedulers. What schedulers read from the
    MessageHub comes from a MessageHub of the simulation's own.

    Args:
        tracks (list[Track]): From :func:`build_tracks`.
        length (TrainLength): From :func:`train_length`.
        param (str): The value to record (Adam's momentum is
            ``betas[0]``). Defaults to ``'lr'``.
        metrics (list[float], optional): One per validation, under each
            plateau scheduler's ``monitor``; later validations feed none.
        progress (callable, optional): Called with the iterations done,
            50 times over the run.

    Example:
        >>> curves = simulate(tracks, length)
        >>> curves.values[0]  # each distinct group's lr at iteration 0
    """
    groups = [g for t in tracks
              for g in t.probe.optimizer.param_groups[:len(t.curves)]]
    for group in groups:
        if param not in group and (param != 'momentum' or 'betas' not in
                                   group):
            raise KeyError(f'the optimizer groups have no {param!r} (keys: '
                           f'{", ".join(sorted(set(group) - {"params"}))})')
    values = np.empty((length.max_iters, len(groups)))
    iter_scheds = [s for t in tracks for s in t.schedulers if not s.by_epoch]
    epoch_scheds = [s for t in tracks for s in t.schedulers if s.by_epoch]
    plateau = [s for s in epoch_scheds if getattr(s, 'need_val_args', False)]
    feed, validations = list(metrics or []), []
    steps = length.max_iters
    chunk = max(1, steps // 50)
    reports = set(range(chunk, steps + 1, chunk)) | {steps}
    ends = range(length.epoch_length, steps + 1,
                 length.epoch_length) if length.by_epoch else []
    done = 0
    with _private_message_hub() as hub:
        # Between these stops only the iteration-based schedulers step.
        checks = [] if length.by_epoch else length.validation_points()
        for stop in sorted(reports.union(ends, checks)):
            for it in range(done, stop):
                values[it] = [g[param] if param in g else g['betas'][0]
                              for g in groups]
                for scheduler in iter_scheds:
                    scheduler.step()
            done = stop
            epoch_end = length.by_epoch and done % length.epoch_length == 0
            for scheduler in epoch_scheds if epoch_end else []:
                scheduler.step()
            count = done // length.epoch_length if epoch_end else done
            if (epoch_end or not length.by_epoch) and \
                    length.validation_after(count):
                validations.append(done)
                hub.update_info('iter', done)
                if feed and plateau:
                    value = feed.pop(0)
                    for scheduler in plateau:
                        scheduler.step(
                            {getattr(scheduler, 'monitor', 'loss'): value})
            if progress is not None and done in reports:
                progress(done)
        if not length.by_epoch:  # the loop's single epoch ends here
            for scheduler in epoch_scheds:
                scheduler.step()
    return LrCurves(param, values, *_legend(tracks), length,
                    windows_of(tracks, length), validations)


@contextmanager
def _private_message_hub():
    # mmengine's current instance is the one created last: this one while
    # the schedulers step; removed after, the caller's is current again.
    name = f'mmlr_simulate_{uuid.uuid4().hex}'
    try:
        yield MessageHub.get_instance(name)
    finally:
        MessageHub._instance_dict.pop(name, None)


def _legend(tracks: list[Track]) -> tuple[list, list, list, list]:
    # Each curve's label and layer id; each real group's curve and name.
    # "layer 3 (groups 6,7)": the depth colours the curve, the numbers are
    # the optimizer groups (as in tools/param_groups.py) it stands for.
    labels, layer_ids, group_of, names = [], [], [], []
    for track in tracks:
        group_of += [len(labels) + curve for curve in track.group_of]
        names += [f'{track.name + "/" if track.name else ""}group{i}'
                  for i in range(len(track.group_of))]
        prefix = f'{track.name}: ' if track.name else ''
        for curve, group in enumerate(track.curves):
            members = [str(i) for i, c in enumerate(track.group_of)
                       if c == curve]
            which = f'group{"s" * (len(members) > 1)} {",".join(members)}'
            layer = group.get('layer_id')
            labels.append(f'{prefix}layer {layer} ({which})'
                          if layer is not None else f'{prefix}{which}')
            layer_ids.append(layer)
    return labels, layer_ids, group_of, names


def windows_of(tracks: list[Track], length: TrainLength) -> list[Window]:
    """Each scheduler's :class:`Window` (epochs times the epoch length)."""
    windows = []
    for track in tracks:
        for s in track.schedulers:
            scale = 1 if not s.by_epoch else (
                length.epoch_length if length.by_epoch else length.max_iters)
            selected = getattr(s, 'indices', None)
            windows.append(Window(
                track.name, scheduler_name(s), s.begin * scale,
                s.end * scale if s.end < 1e9 else math.inf,
                bool(getattr(s, 'need_val_args', False)),
                None if selected is None else tuple(selected)))
    return windows


def scheduler_name(scheduler) -> str:
    """``'CosineAnnealingLR'``; a GroupSelect as its scheduler and selection:
    ``"MultiStepLR(role='backbone')"``."""
    if isinstance(scheduler, GroupSelect):
        return f'{type(scheduler.scheduler).__name__}(' + ', '.join(
            f'{k}={v!r}' for k, v in scheduler.groups.items()) + ')'
    return type(scheduler).__name__
