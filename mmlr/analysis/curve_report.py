"""Recorded curves as a summary table."""
import numpy as np

from .lr_curves import LrCurves


def boundaries(curves: LrCurves) -> list[int]:
    """Iterations worth a column: the start, every scheduler's ``begin``
    and last iteration (``end - 1``) inside the run, and the last one."""
    last = curves.length.max_iters - 1
    points = {0, last}
    for window in curves.windows:
        for point in (window.begin, window.end - 1):
            if 0 <= point <= last:
                points.add(int(point))
    return sorted(points)


def summary_table(curves: LrCurves, max_columns: int = 8) -> str:
    """Each curve's value at the start, at the schedulers' window
    boundaries and at the end, with its min and max.

    Args:
        curves (LrCurves): From :func:`simulate`.
        max_columns (int): Boundary columns shown at most (evenly picked,
            start and end always).

    Example:
        >>> print(summary_table(curves))
    """
    points = boundaries(curves)
    if len(points) > max_columns:
        keep = np.linspace(0, len(points) - 1, max_columns).round()
        points = [points[int(i)] for i in keep]
    label_width = max(len(label) for label in curves.labels)
    head = [f'{"":<{label_width}}'] + [f'{"it " + str(p):>10}'
                                       for p in points] + [
        f'{"min":>10}', f'{"max":>10}']
    lines = [f'{curves.param} at iteration (of {curves.length.max_iters}):',
             ' '.join(head)]
    for column, label in enumerate(curves.labels):
        series = curves.values[:, column]
        cells = [f'{series[p]:>10.3e}' for p in points]
        cells += [f'{series.min():>10.3e}', f'{series.max():>10.3e}']
        lines.append(' '.join([f'{label:<{label_width}}'] + cells))
    return '\n'.join(lines)
