"""Which lr a range test suggests: a tenth of the lr at the lowest smoothed
loss.

Rule: skip the first tenth of the iterations (the moving average has seen
few losses there), find the lowest smoothed loss among the rest, and
suggest a tenth of its lr. The lowest point itself is already at the edge
of divergence; a decade below it the loss still falls but training is
stable. The steepest descent before the minimum (the most negative
``d loss / d log10(lr)`` of the smoothed loss, ``numpy.gradient`` over
those points) is reported beside it: the other common rule, but on a noisy
or flat curve it lands on noise, often right at the minimum.
"""
from dataclasses import dataclass

import numpy as np

from .range_test import RangeTestResult


@dataclass
class LrSuggestion:
    """The suggested lr and the points it came from.

    Attributes:
        lr (float): The suggestion, ``minimum_lr / 10``.
        minimum_lr (float): The lr at the lowest smoothed loss.
        minimum_index (int): Its iteration.
        steepest_lr (float, optional): The lr of the steepest descent before
            the minimum; None when fewer than 2 points lie between the
            skipped start and the minimum.
        steepest_index (int, optional): Its iteration.
    """
    lr: float
    minimum_lr: float
    minimum_index: int
    steepest_lr: float | None = None
    steepest_index: int | None = None


def suggest_lr(result: RangeTestResult) -> LrSuggestion:
    """Apply the module's rule to a range test's smoothed losses.

    Raises:
        ValueError: No finite smoothed loss was recorded.

    Example:
        >>> suggestion = suggest_lr(run_range_test(...))
        >>> suggestion.lr
    """
    smoothed = np.asarray(result.smoothed, dtype=float)
    lrs = np.asarray(result.lrs, dtype=float)
    # The first non-finite loss stopped the run: the points before it count.
    finite = np.isfinite(smoothed)
    usable = len(smoothed) if finite.all() else int(np.argmin(finite))
    if usable == 0:
        raise ValueError('the range test recorded no finite loss')
    # Keep at least one point when the run stopped within its first tenth.
    skip = min(result.planned_iters // 10, usable - 1)
    minimum = skip + int(np.argmin(smoothed[skip:usable]))
    suggestion = LrSuggestion(float(lrs[minimum]) / 10,
                              float(lrs[minimum]), minimum)
    if minimum - skip + 1 >= 2:
        window = slice(skip, minimum + 1)
        slopes = np.gradient(smoothed[window], np.log10(lrs[window]))
        suggestion.steepest_index = skip + int(np.argmin(slopes))
        suggestion.steepest_lr = float(lrs[suggestion.steepest_index])
    return suggestion


__all__ = ['LrSuggestion', 'suggest_lr']
