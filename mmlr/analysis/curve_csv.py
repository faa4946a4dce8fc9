"""Recorded curves as a CSV file: one row per iteration, one column per
optimizer group.

A 1,000,000-iteration run with 60 groups is a 1 GB file and 60 million
numbers to format, which Python does at about 0.35 us each. Each distinct
curve is therefore formatted once and its text reused for its twin groups,
and long files are split between two processes (one per core), each
writing its share of the rows, appended in order at the end.
"""
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .lr_curves import LrCurves

# Rows from which a second process pays for itself (measured here with 30
# curves: 300,000 rows 5.3 s against 4.3 s alone; 1,000,000 rows 13 s
# against 17 s).
PARALLEL_ROWS = 500_000

# What the forked workers read (inherited, never pickled).
_SHARED: dict = {}


def write_csv(curves: LrCurves, path: str, rows_per_block: int = 50_000,
              processes: int | None = None) -> None:
    """Columns ``iter``, ``epoch`` (fractional: iteration / epoch length)
    and every optimizer group's value (``%.10g``).

    Args:
        curves (LrCurves): From :func:`simulate`.
        path (str): Output file.
        rows_per_block (int): Rows formatted at once (bounds the memory of
            a 1,000,000-row file).
        processes (int, optional): Formatting processes; by default two
            for files of :data:`PARALLEL_ROWS` rows or more on a machine
            with two cores and a ``fork`` start method, else one.

    Example:
        >>> write_csv(curves, 'work_dirs/lr.csv')
    """
    steps = len(curves.values)
    _SHARED.update(values=curves.values, group_of=curves.group_of,
                   epoch_length=curves.length.epoch_length or steps,
                   rows_per_block=rows_per_block)
    if processes is None:
        processes = 2 if (steps >= PARALLEL_ROWS and (os.cpu_count() or 1) > 1
                          and 'fork' in multiprocessing.get_all_start_methods()
                          ) else 1
    header = ','.join(['iter', 'epoch'] + curves.group_names) + '\n'
    if processes == 1:
        try:
            with open(path, 'w') as f:
                f.write(header)
                _write_rows(f, 0, steps)
        finally:
            _SHARED.clear()
        return
    # Each process writes a contiguous share of the rows to a file of its
    # own, in a folder of ours beside the output (same file system, so the
    # kernel can join them); the shares are then appended in order. A
    # worker that dies (out of memory) raises BrokenProcessPool here.
    folder = tempfile.mkdtemp(prefix='.csv_parts_',
                              dir=os.path.dirname(os.path.abspath(path)))
    try:
        cuts = np.linspace(0, steps, processes + 1).astype(int).tolist()
        parts = [(os.path.join(folder, f'part{i}'), cuts[i], cuts[i + 1])
                 for i in range(processes)]
        with ProcessPoolExecutor(
                processes,
                mp_context=multiprocessing.get_context('fork')) as pool:
            list(pool.map(_write_part, parts))
        with open(path, 'wb') as f:
            f.write(header.encode())
            f.flush()
            for part, _, _ in parts:
                _append(part, f)
    finally:
        _SHARED.clear()
        shutil.rmtree(folder, ignore_errors=True)


def _append(part: str, f) -> None:
    # In the kernel where it can (0.2 s for 500 MB here, against 2 s
    # through Python). ``f`` is a binary file, flushed before and after.
    with open(part, 'rb') as share:
        size = os.fstat(share.fileno()).st_size
        try:
            while size > 0:
                copied = os.copy_file_range(share.fileno(), f.fileno(), size)
                if copied == 0:
                    break
                size -= copied
        except (AttributeError, OSError):  # old kernel, other file system
            pass
        if size > 0:  # no copy_file_range here: copy the rest by hand
            share.seek(-size, os.SEEK_END)
            shutil.copyfileobj(share, f, 1 << 24)
            f.flush()


def _write_part(part: tuple[str, int, int]) -> None:
    path, start, stop = part
    with open(path, 'w') as f:
        _write_rows(f, start, stop)


def _write_rows(f, start: int, stop: int) -> None:
    size = _SHARED['rows_per_block']
    for begin in range(start, stop, size):
        f.write(_format_block((begin, min(begin + size, stop))))


def _format_block(bounds: tuple[int, int]) -> str:
    start, stop = bounds
    values = np.asarray(_SHARED['values'][start:stop])
    cells = [list(map('%.10g'.__mod__, column))
             for column in values.T.tolist()]
    steps = range(start, stop)
    epoch_length = _SHARED['epoch_length']
    columns = [list(map(str, steps)),
               ['%.6g' % (step / epoch_length) for step in steps]]
    columns += [cells[curve] for curve in _SHARED['group_of']]
    return ''.join([','.join(row) + '\n' for row in zip(*columns)])


__all__ = ['write_csv', 'PARALLEL_ROWS']
