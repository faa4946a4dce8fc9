"""Recorded curves as text: a CSV file and a summary table."""
import numpy as np

from .lr_curves import LrCurves


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
    steps = len(curves.values)
    table = np.empty((steps, 2 + curves.values.shape[1]))
    table[:, 0] = np.arange(steps)
    table[:, 1] = table[:, 0] / (curves.length.epoch_length or steps)
    table[:, 2:] = curves.values
    np.savetxt(path, table, delimiter=',', comments='',
               fmt=['%d', '%.6g'] + ['%.10g'] * curves.values.shape[1],
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
