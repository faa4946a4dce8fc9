"""What a config will do, before training: every group's LR curve.

Behind ``tools/vis_lr.py``, given the model and optim wrapper that
:mod:`mmlr.config_build` builds from the config: the config's own
schedulers are built and stepped, never a second implementation; the engines
(:mod:`mmlr.optim`, :mod:`mmlr.schedulers`) never import this package, and
importing it changes no global state (matplotlib backend, process group,
MessageHub).
"""
from .curve_output import plot_curves, summary_table, write_csv
from .lr_curves import LrCurves, simulate
from .schedule_build import build_tracks
from .schedule_warnings import check_schedule, plateau_inputs
from .train_length import TrainLength, epoch_length_of, train_length

__all__ = [
    'TrainLength', 'train_length', 'epoch_length_of', 'build_tracks',
    'LrCurves', 'simulate', 'check_schedule', 'plateau_inputs', 'write_csv',
    'summary_table', 'plot_curves'
]
