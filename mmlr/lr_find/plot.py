"""Draw a range test's loss against lr into a PNG, the suggestion marked.

A ``Figure`` on its own ``FigureCanvasAgg`` needs no display and leaves
pyplot's backend as it was.
"""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .range_test import RangeTestResult
from .suggestion import LrSuggestion

DPI = 100
SUGGESTION_COLOUR = '#d62728'


def plot_range_test(result: RangeTestResult, suggestion: LrSuggestion,
                    out: str, size: tuple[int, int] = (900, 550),
                    title: str | None = None) -> None:
    """Save the smoothed loss (and, faint, the raw loss) against the
    reference lr on a logarithmic axis, with a red dashed line at the
    suggested lr, a grey dotted line at the lowest smoothed loss and a grey
    dot at the steepest descent.

    The value axis spans the smoothed curve up to its last point within
    1.25 times its first value, so a diverging tail leaves the picture
    instead of flattening the part that matters.

    Args:
        result (RangeTestResult): From :func:`run_range_test`.
        suggestion (LrSuggestion): From :func:`suggest_lr`.
        out (str): PNG path.
        size (tuple[int, int]): Width and height in pixels.
        title (str, optional): Figure title.

    Example:
        >>> plot_range_test(result, suggest_lr(result), 'lr_find.png')
    """
    lrs = np.asarray(result.lrs, dtype=float)
    smoothed = np.asarray(result.smoothed, dtype=float)
    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(lrs, result.losses, color='#1f77b4', alpha=0.25, linewidth=0.8,
            label='loss')
    ax.plot(lrs, smoothed, color='#1f77b4', linewidth=1.8,
            label='smoothed loss')
    ax.set_xscale('log')
    ax.axvline(suggestion.minimum_lr, color='grey', linestyle=':',
               linewidth=1, label=f'lowest smoothed loss at '
               f'{suggestion.minimum_lr:.3g}')
    if suggestion.steepest_lr is not None:
        ax.plot([suggestion.steepest_lr],
                [smoothed[suggestion.steepest_index]], 'o', color='grey',
                markersize=5, label=f'steepest descent at '
                f'{suggestion.steepest_lr:.3g}')
    ax.axvline(suggestion.lr, color=SUGGESTION_COLOUR, linestyle='--',
               linewidth=1.5, label=f'suggested lr {suggestion.lr:.3g}')
    low, high = _value_band(smoothed)
    margin = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
    ax.set_ylim(low - margin, high + margin)
    # The suggestion lies below the tested lrs when the loss was lowest
    # within the first decade.
    ax.set_xlim(min(lrs[0], suggestion.lr / 2),
                lrs[-1] if len(lrs) > 1 else lrs[0] * 10)
    ax.set_xlabel('lr (optimizer.lr; other groups keep their ratios)')
    ax.set_ylabel('training loss')
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small', loc='best')
    if title:
        ax.set_title(title, fontsize='medium')
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)


def _value_band(smoothed: np.ndarray) -> tuple[float, float]:
    finite = smoothed[np.isfinite(smoothed)]
    if len(finite) == 0:
        return 0.0, 1.0
    calm = np.flatnonzero(np.isfinite(smoothed)
                          & (smoothed <= 1.25 * abs(finite[0])))
    shown = smoothed[:calm[-1] + 1] if len(calm) else finite
    shown = shown[np.isfinite(shown)]
    return float(shown.min()), float(shown.max())


__all__ = ['plot_range_test']
