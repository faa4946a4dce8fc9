"""What a config will do, before training: LR curves and parameter groups.

Pure functions behind ``tools/vis_lr.py`` and ``tools/param_groups.py``.
They build the config's own constructor and schedulers (never a second
implementation of either); the engines (:mod:`mmlr.optim`,
:mod:`mmlr.schedulers`) never import this package.
"""
from .config_build import build_model, build_optim_wrapper_of, load_config
from .curve_csv import write_csv
from .curve_report import boundaries, summary_table
from .group_table import GroupReport, ParamRow, group_report, write_param_csv
from .lr_curves import LrCurves, Window, read_value, simulate, windows_of
from .lr_plot import plot_curves
from .metric_sequence import metrics_coverage, parse_metrics
from .schedule_build import (ProbeOptimizer, Track, build_tracks,
                             distinct_groups, scheduler_configs)
from .schedule_warnings import (check_schedule, ends_after_training,
                                eta_min_above_start, overlapping_windows,
                                plateau_inputs, schedule_gaps)
from .train_length import (TrainLength, dataloader_length, epoch_length_of,
                           train_length)

__all__ = [
    'load_config', 'build_model', 'build_optim_wrapper_of', 'TrainLength',
    'train_length', 'dataloader_length', 'epoch_length_of', 'ProbeOptimizer',
    'Track', 'build_tracks', 'distinct_groups', 'scheduler_configs',
    'LrCurves', 'Window', 'simulate', 'read_value', 'windows_of',
    'parse_metrics', 'metrics_coverage', 'check_schedule', 'overlapping_windows',
    'schedule_gaps', 'eta_min_above_start', 'ends_after_training',
    'plateau_inputs', 'write_csv', 'summary_table', 'boundaries',
    'plot_curves', 'group_report', 'write_param_csv', 'GroupReport',
    'ParamRow'
]
