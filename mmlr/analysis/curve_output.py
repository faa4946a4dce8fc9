"""Recorded curves as a PNG (a ``Figure`` on its own Agg canvas: no display,
and pyplot's backend is left as it was), a CSV file and a summary table."""
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

    The x-axis counts iterations, the top axis epochs. Long runs are
    thinned to ``MAX_POINTS`` per curve keeping each stretch's minimum and
    maximum, so steps and reductions stay visible.

    Args:
        curves (LrCurves): From :func:`simulate`.
        out (str): PNG path.
        size (tuple[int, int]): Width and height in pixels.
        log_y (bool): Logarithmic value axis (layer decay spans decades).
        title (str, optional): Figure title.

    Example:
        >>> plot_curves(curves, 'lr.png', size=(800, 500), log_y=True)
    """
    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x, y = _thin(curves.values)
    known = [d for d in curves.layer_ids if d is not None]
    top = max(known, default=0) or 1
    repeats: dict = {}
    for column, (label, layer) in enumerate(zip(curves.labels,
                                                curves.layer_ids)):
        if not known:  # no depths: tell the curves apart by index
            colour = matplotlib.colormaps['tab10'](column % 10)
        else:  # by depth; black for a group without one
            colour = 'black' if layer is None else \
                matplotlib.colormaps['viridis'](0.9 * layer / top)
        repeats[layer] = repeats.get(layer, -1) + 1
        ax.plot(x, y[:, column], color=colour, linewidth=1.2, label=label,
                linestyle=['-', '--', ':', '-.'][repeats[layer] % 4])
    if log_y and (curves.values > 0).any():
        ax.set_yscale('log')
    ax.set(xlabel='iteration', ylabel=curves.param,
           xlim=(0, max(1, len(curves.values) - 1)))
    ax.grid(alpha=0.3)
    length = curves.length
    if length.by_epoch and length.epoch_length:
        epochs = ax.secondary_xaxis(
            'top', functions=(lambda it: it / length.epoch_length,
                              lambda ep: ep * length.epoch_length))
        epochs.set_xlabel('epoch')
        epochs.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))
    if len(curves.labels) <= 16:
        ax.legend(fontsize='small', loc='best')
    elif known:  # a legend of 30 entries hides the curves: a colour bar
        fig.colorbar(ScalarMappable(Normalize(0, top / 0.9), 'viridis'),
                     ax=ax).set_label('layer id')
    if title:
        ax.set_title(title, fontsize='medium')
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)


def _thin(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    steps = len(values)
    if steps <= MAX_POINTS:
        return np.arange(steps), values
    bins = MAX_POINTS // 2
    edges = np.linspace(0, steps, bins + 1).astype(int)[:-1]
    y = np.empty((2 * bins, values.shape[1]))
    y[0::2] = np.maximum.reduceat(values, edges, axis=0)
    y[1::2] = np.minimum.reduceat(values, edges, axis=0)
    return np.repeat(edges, 2), y


def write_csv(curves: LrCurves, path: str) -> None:
    """One row per iteration: ``iter``, ``epoch`` (iteration / epoch
    length) and each distinct curve's value (``%.10g``), the curve's column
    named by the groups that follow it (``group0+group1``;
    ``generator/group0`` in an ``OptimWrapperDict``).

    Example:
        >>> write_csv(curves, 'work_dirs/lr.csv')
        >>> open('work_dirs/lr.csv').readline()
        'iter,epoch,group0+group1,group2+group3\\n'
    """
    members = [[] for _ in curves.labels]
    for group, curve in enumerate(curves.group_of):
        members[curve].append(curves.group_names[group])
    steps, columns = curves.values.shape
    table = np.empty((steps, 2 + columns))
    table[:, 0] = np.arange(steps)
    table[:, 1] = table[:, 0] / (curves.length.epoch_length or steps)
    table[:, 2:] = curves.values
    np.savetxt(path, table, delimiter=',', comments='',
               fmt=['%d', '%.6g'] + ['%.10g'] * columns,
               header=','.join(['iter', 'epoch'] +
                               ['+'.join(names) for names in members]))


def summary_table(curves: LrCurves, max_columns: int = 8) -> str:
    """Each curve's value at the start, at the schedulers' window
    boundaries (``begin`` and ``end - 1`` inside the run; at most
    ``max_columns``, evenly picked) and at the end, with its min and max.

    Example:
        >>> print(summary_table(curves))
    """
    last = curves.length.max_iters - 1
    points = sorted({0, last} | {
        int(point) for window in curves.windows
        for point in (window.begin, window.end - 1) if 0 <= point <= last})
    if len(points) > max_columns:
        keep = np.linspace(0, len(points) - 1, max_columns).round()
        points = [points[int(i)] for i in keep]
    width = max(len(label) for label in curves.labels)
    head = [f'{"":<{width}}'] + [f'{"it " + str(p):>10}' for p in points]
    lines = [f'{curves.param} at iteration (of {curves.length.max_iters}):',
             ' '.join(head + [f'{"min":>10}', f'{"max":>10}'])]
    for column, label in enumerate(curves.labels):
        series = curves.values[:, column]
        cells = [f'{v:>10.3e}' for v in
                 [series[p] for p in points] + [series.min(), series.max()]]
        lines.append(' '.join([f'{label:<{width}}'] + cells))
    return '\n'.join(lines)
