"""What a config will do, before training: LR curves and parameter groups.

Pure functions behind ``tools/vis_lr.py`` and ``tools/param_groups.py``.
They build the config's own constructor and schedulers (never a second
implementation of either) and step them; the engines (:mod:`mmlr.optim`,
:mod:`mmlr.schedulers`) never import this package. Importing it changes no
global state (matplotlib backend, process group, MessageHub).
"""
from .config_build import build_model, build_optim_wrapper_of, load_config
from .curve_output import summary_table, write_csv
from .group_table import group_report, write_param_csv
from .lr_curves import LrCurves, metrics_coverage, simulate
from .lr_plot import plot_curves
from .schedule_build import build_tracks
from .schedule_warnings import check_schedule, plateau_inputs
from .train_length import TrainLength, epoch_length_of, train_length

__all__ = [
    'load_config', 'build_model', 'build_optim_wrapper_of', 'TrainLength',
    'train_length', 'epoch_length_of', 'build_tracks', 'LrCurves',
    'simulate', 'metrics_coverage', 'check_schedule',
    'plateau_inputs', 'write_csv', 'summary_table', 'plot_curves',
    'group_report', 'write_param_csv'
]
