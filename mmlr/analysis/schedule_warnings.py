"""Mistakes in a schedule that a picture shows but a user may overlook."""
import math

from .lr_curves import Window, scheduler_name, windows_of
from .schedule_build import Track
from .train_length import TrainLength

# Schedulers meant to follow a constant value: no gap before them is reported.
HOLD_BEFORE = ('CooldownLR', )


def check_schedule(tracks: list[Track], length: TrainLength) -> list[str]:
    """Every problem of the schedule itself, a message each: timed
    schedulers of one optimizer overlapping (their changes multiply), no
    scheduler acting on some iterations, an absolute ``eta_min`` above a
    group's starting value, an ``end`` beyond the run.

    Example:
        >>> for message in check_schedule(tracks, length):
        ...     print('warning:', message)
    """
    windows = windows_of(tracks, length)
    return (_overlaps(windows) + _gaps(windows, length) +
            _eta_min_above_start(tracks) + _ends_after(tracks, length))


def plateau_inputs(tracks: list[Track], length: TrainLength,
                   metrics: list[float] | None) -> list[str]:
    """Notes on the simulation: plateau schedulers reduce only on the
    validation metrics ``--metrics`` supplies; training scalars cannot be
    simulated."""
    messages = []
    for scheduler in [s for t in tracks for s in t.schedulers
                      if getattr(s, 'need_val_args', False)]:
        monitor = getattr(scheduler, 'monitor', '')
        name = type(scheduler).__name__
        if monitor.startswith('train/'):
            messages.append(f'{name} watches the training scalar '
                            f'{monitor!r}, which a simulation has not: it '
                            'never reduces here')
        elif not length.validates:
            messages.append(f'{name} needs validation metrics but the '
                            'config does not validate: it never reduces')
        elif not metrics:
            messages.append(f'{name} reduces only on validation metrics: '
                            'pass --metrics to see its reductions')
    return messages


def _overlaps(windows: list[Window]) -> list[str]:
    # Plateau schedulers are meant to act on top; two GroupSelects act on
    # other groups or chain by design (those that cannot were refused).
    messages = []
    timed = [w for w in windows if not w.plateau]
    for i, first in enumerate(timed):
        for second in timed[i + 1:]:
            if first.track != second.track or (
                    first.groups is not None and second.groups is not None):
                continue
            begin, end = max(first.begin, second.begin), min(
                first.end, second.end)
            if begin < end:
                last = 'end' if math.isinf(end) else int(end) - 1
                messages.append(
                    f'{first.name} and {second.name} both act on iterations '
                    f'{begin}-{last}: their changes multiply there')
    return messages


def _gaps(windows: list[Window], length: TrainLength) -> list[str]:
    # Not a gap: a hold before the first scheduler, or before a cooldown
    # (the usual "constant, then decay").
    messages = []
    for track in sorted({w.track for w in windows}):
        spans = sorted((w.begin, w.end, w.name) for w in windows
                       if w.track == track)
        covered = spans[0][1]
        for begin, end, name in spans[1:]:
            if begin > covered and name not in HOLD_BEFORE:
                messages.append(
                    f'{_name(track)}no scheduler acts on iterations '
                    f'{covered}-{begin - 1}: the value is held there')
            covered = max(covered, end)
        if covered < length.max_iters:
            messages.append(
                f'{_name(track)}no scheduler acts after iteration '
                f'{covered - 1} (of {length.max_iters}): the value is held '
                'until the end')
    return messages


def _eta_min_above_start(tracks: list[Track]) -> list[str]:
    # With layer decay the lowest layers start far below the top lr, and
    # annealing to an absolute eta_min above their start raises them.
    messages = []
    for track in tracks:
        for scheduler in track.schedulers:
            eta_min = getattr(scheduler, 'eta_min', None)
            if eta_min is None or getattr(scheduler, 'eta_min_ratio', None):
                continue
            # a GroupSelect's base values are those of its groups only
            groups = [track.curves[i] for i in getattr(
                scheduler, 'indices', range(len(track.curves)))]
            low = [(group, base) for group, base in zip(
                groups, scheduler.base_values) if base < eta_min]
            if low:
                layers = sorted({g.get('layer_id') for g, _ in low} - {None})
                where = f' (layer ids {layers})' if layers else ''
                messages.append(
                    f'{_name(track.name)}{scheduler_name(scheduler)} anneals '
                    f'to eta_min={eta_min:g}, above the starting '
                    f'{scheduler.param_name} of {len(low)} distinct '
                    f'group(s){where}, lowest {min(b for _, b in low):.3g}: '
                    f'their {scheduler.param_name} will rise; use '
                    'eta_min_ratio, or a smaller eta_min')
    return messages


def _ends_after(tracks: list[Track], length: TrainLength) -> list[str]:
    # A scheduler whose end lies beyond the run never reaches its final
    # value; an iteration loop has a single epoch.
    messages = []
    for track in tracks:
        for cfg in track.configs:
            end, by_epoch = cfg.get('end'), cfg.get('by_epoch', True)
            limit = length.max_epochs if by_epoch else length.max_iters
            if (by_epoch and not length.by_epoch) or end is None or \
                    end >= 1e9 or end <= limit:
                continue
            messages.append(
                f'{_name(track.name)}{cfg["type"]} has end={end} but '
                f'{"max_epochs" if by_epoch else "max_iters"} is {limit}: '
                'it stops part-way')
    return messages


def _name(track: str) -> str:
    return f'{track}: ' if track else ''
