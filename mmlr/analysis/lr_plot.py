"""Draw recorded curves into a PNG with matplotlib's Agg canvas.

A ``Figure`` drawn on its own ``FigureCanvasAgg`` needs no display and
leaves the process's matplotlib backend (pyplot's) as it was.
"""
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .lr_curves import LrCurves

DPI = 100
MAX_POINTS = 4000  # per curve: far more than a picture's width in pixels


def plot_curves(curves: LrCurves, out: str, size: tuple[int, int] = (1000,
                                                                     600),
                log_y: bool = False, title: str | None = None) -> None:
    """Save one curve per distinct group, coloured by layer depth.

    The x-axis counts iterations; the top axis marks epochs. Long runs are
    thinned to ``MAX_POINTS`` per curve, always keeping each stretch's
    minimum and maximum, so steps and reductions stay visible.

    Args:
        curves (LrCurves): From :func:`simulate`.
        out (str): PNG path.
        size (tuple[int, int]): Width and height in pixels.
        log_y (bool): Logarithmic value axis (layer decay spans decades).
        title (str, optional): Figure title.

    Example:
        >>> plot_curves(curves, 'lr.png', size=(800, 500), log_y=True)
    """
    width, height = size
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x, y = _thin(curves.values)
    colours = _colours(curves.layer_ids)
    styles = ['-', '--', ':', '-.']
    seen_layers: dict = {}
    for column, label in enumerate(curves.labels):
        layer = curves.layer_ids[column]
        repeat = seen_layers.setdefault(layer, 0)
        seen_layers[layer] += 1
        ax.plot(x, y[:, column], color=colours[column],
                linestyle=styles[repeat % len(styles)], linewidth=1.2,
                label=label)
    if log_y and (curves.values > 0).any():
        ax.set_yscale('log')
    ax.set_xlabel('iteration')
    ax.set_ylabel(curves.param)
    ax.set_xlim(0, max(1, len(curves.values) - 1))
    ax.grid(alpha=0.3)
    _epoch_axis(ax, curves)
    if len(curves.labels) <= 16:
        ax.legend(fontsize='small', loc='best')
    else:  # a legend of 30 entries hides the curves: use the colour bar
        _depth_colourbar(fig, ax, curves.layer_ids)
    if title:
        ax.set_title(title, fontsize='medium')
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)


def _thin(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    steps = len(values)
    if steps <= MAX_POINTS:
        return np.arange(steps), values
    bins = MAX_POINTS // 2
    edges = np.linspace(0, steps, bins + 1).astype(int)
    lows = np.minimum.reduceat(values, edges[:-1], axis=0)
    highs = np.maximum.reduceat(values, edges[:-1], axis=0)
    x = np.repeat(edges[:-1], 2)
    y = np.empty((2 * bins, values.shape[1]))
    y[0::2], y[1::2] = highs, lows
    return x, y


def _colours(layer_ids: list) -> list:
    known = [d for d in layer_ids if d is not None]
    cmap = matplotlib.colormaps['viridis']
    if not known:  # no depths: tell curves apart by index
        tab10 = matplotlib.colormaps['tab10']
        return [tab10(i % 10) for i in range(len(layer_ids))]
    top = max(known) or 1
    return [cmap(0.9 * d / top) if d is not None else 'black'
            for d in layer_ids]


def _epoch_axis(ax, curves: LrCurves) -> None:
    length = curves.length
    if not length.by_epoch or not length.epoch_length:
        return
    top = ax.secondary_xaxis(
        'top', functions=(lambda it: it / length.epoch_length,
                          lambda ep: ep * length.epoch_length))
    top.set_xlabel('epoch')
    top.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))


def _depth_colourbar(fig, ax, layer_ids: list) -> None:
    known = [d for d in layer_ids if d is not None]
    if not known:
        return
    norm = Normalize(0, max(known) / 0.9 or 1)
    bar = fig.colorbar(
        ScalarMappable(norm=norm, cmap='viridis'), ax=ax)
    bar.set_label('layer id')
