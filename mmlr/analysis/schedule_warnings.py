"""Mistakes in a schedule that a picture shows but a user may not look
for: each check takes the built schedulers and returns plain messages."""
import math

from .lr_curves import Window, scheduler_name, windows_of
from .schedule_build import Track
from .train_length import TrainLength

# Schedulers meant to follow a constant value: no gap before them is reported.
HOLD_BEFORE = ('CooldownLR', )


def overlapping_windows(windows: list[Window]) -> list[str]:
    """Two timed schedulers of one optimizer acting on the same iterations
    multiply their effects, rarely meant (a warm-up running into the decay);
    plateau schedulers are meant to act on top and are left out."""
    messages = []
    timed = [w for w in windows if not w.plateau]
    for i, first in enumerate(timed):
        for second in timed[i + 1:]:
            if first.track != second.track or (
                    first.groups is not None and second.groups is not None):
                # other optimizers; or two GroupSelects: on other groups, or
                # chaining by design (those that cannot were refused when
                # built)
                continue
            begin, end = max(first.begin, second.begin), min(
                first.end, second.end)
            if begin < end:
                messages.append(
                    f'{first.name} and {second.name} both act on iterations '
                    f'{begin}-{_last(end)}: their changes multiply there')
    return messages


def schedule_gaps(windows: list[Window], length: TrainLength) -> list[str]:
    """Iterations after the first scheduler began where none acts (a hold
    before the first one, or one ending where a cooldown begins, is the
    usual "constant, then decay")."""
    messages = []
    for track in sorted({w.track for w in windows}):
        spans = sorted((w.begin, w.end, w.name) for w in windows
                       if w.track == track)
        if not spans:
            continue
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


def eta_min_above_start(tracks: list[Track]) -> list[str]:
    """An absolute ``eta_min`` above a group's starting value makes
    annealing *raise* it: with layer decay the lowest layers start far
    below the top lr."""
    messages = []
    for track in tracks:
        for scheduler in track.schedulers:
            eta_min = getattr(scheduler, 'eta_min', None)
            if eta_min is None or getattr(scheduler, 'eta_min_ratio', None):
                continue
            # a GroupSelect's base values are those of its groups only
            groups = [track.curves[i] for i in getattr(
                scheduler, 'indices', range(len(track.curves)))]
            low = [(i, base) for i, base in enumerate(
                scheduler.base_values[:len(groups)]) if base < eta_min]
            if low:
                layers = sorted({groups[i].get('layer_id')
                                 for i, _ in low} - {None})
                where = f' (layer ids {layers})' if layers else ''
                messages.append(
                    f'{_name(track.name)}{scheduler_name(scheduler)} anneals '
                    f'to eta_min={eta_min:g}, above the starting '
                    f'{scheduler.param_name} of {len(low)} distinct '
                    f'group(s){where}, lowest {min(b for _, b in low):.3g}: '
                    f'their {scheduler.param_name} will rise; use '
                    'eta_min_ratio, or a smaller eta_min')
    return messages


def ends_after_training(tracks: list[Track], length: TrainLength
                        ) -> list[str]:
    """A scheduler whose configured ``end`` lies beyond the run never
    reaches its final value."""
    messages = []
    for track in tracks:
        for cfg in track.configs:
            end = cfg.get('end')
            by_epoch = cfg.get('by_epoch', True)
            limit = length.max_epochs if by_epoch else length.max_iters
            unit = 'max_epochs' if by_epoch else 'max_iters'
            if by_epoch and not length.by_epoch:
                continue  # an iteration loop has a single epoch
            if end is not None and end < 1e9 and end > limit:
                messages.append(
                    f'{_name(track.name)}{cfg["type"]} has end={end} but '
                    f'{unit} is {limit}: it stops part-way')
    return messages


def plateau_inputs(tracks: list[Track], length: TrainLength,
                   metrics: list[float] | None) -> list[str]:
    """Plateau schedulers need validation metrics, which only ``--metrics``
    supplies here; training scalars cannot be simulated."""
    messages = []
    for track in tracks:
        for scheduler in track.schedulers:
            if not getattr(scheduler, 'need_val_args', False):
                continue
            monitor = getattr(scheduler, 'monitor', '')
            name = type(scheduler).__name__
            if monitor.startswith('train/'):
                messages.append(f'{name} watches the training scalar '
                                f'{monitor!r}, which a simulation has not: '
                                'it never reduces here')
            elif not length.validates:
                messages.append(f'{name} needs validation metrics but the '
                                'config does not validate: it never reduces')
            elif not metrics:
                messages.append(f'{name} reduces only on validation metrics: '
                                'pass --metrics to see its reductions')
    return messages


def check_schedule(tracks: list[Track], length: TrainLength) -> list[str]:
    """Every check of the schedule itself: one message per problem (the
    notes of :func:`plateau_inputs` are about the simulation instead).

    Example:
        >>> for message in check_schedule(tracks, length):
        ...     print('warning:', message)
    """
    windows = windows_of(tracks, length)
    return (overlapping_windows(windows) + schedule_gaps(windows, length) +
            eta_min_above_start(tracks) + ends_after_training(tracks, length))


def _name(track: str) -> str:
    return f'{track}: ' if track else ''


def _last(end: float) -> str:
    return 'end' if math.isinf(end) else str(int(end) - 1)
