"""Recorded curves as a CSV file: one row per iteration, one column per
distinct curve, headed by the optimizer groups that follow it."""
import numpy as np

from .lr_curves import LrCurves


def curve_columns(curves: LrCurves) -> list[str]:
    """Each curve's column name: its groups' names joined by ``+``
    (``group0+group1``; ``generator/group0`` in an ``OptimWrapperDict``)."""
    members = [[] for _ in curves.labels]
    for group, curve in enumerate(curves.group_of):
        members[curve].append(curves.group_names[group])
    return ['+'.join(names) for names in members]


def write_csv(curves: LrCurves, path: str) -> None:
    """Columns ``iter``, ``epoch`` (fractional: iteration / epoch length)
    and every distinct curve's value (``%.10g``).

    Args:
        curves (LrCurves): From :func:`simulate`.
        path (str): Output file.

    Example:
        >>> write_csv(curves, 'work_dirs/lr.csv')
        >>> open('work_dirs/lr.csv').readline()
        'iter,epoch,group0+group1,group2+group3\\n'
    """
    steps = len(curves.values)
    epoch_length = curves.length.epoch_length or steps
    table = np.empty((steps, 2 + curves.values.shape[1]))
    table[:, 0] = np.arange(steps)
    table[:, 1] = table[:, 0] / epoch_length
    table[:, 2:] = curves.values
    fmt = ['%d', '%.6g'] + ['%.10g'] * curves.values.shape[1]
    np.savetxt(path, table, fmt=fmt, delimiter=',', comments='',
               header=','.join(['iter', 'epoch'] + curve_columns(curves)))
