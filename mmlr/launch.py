"""From a config file and command-line flags to a ready mmengine ``Runner``.

``tools/train.py`` is a thin shell over these functions, so the tests drive
the same code path a user's command does.
"""
import itertools
import logging
import os
import os.path as osp

from mmengine.config import Config
from mmengine.device import get_device
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.registry import RUNNERS, DefaultScope
from mmengine.runner import Runner
from torch import nn

from .cfg_options import load_config_file, merge_cfg_options
from .checkpoint import check_checkpoint_file, refuse_forced_code_loading
from .cpu_distributed import end_process_group, prepare_cpu_distributed
from .flexible import MmlrFlexibleRunner, uses_strategy
from .hooks import (LayerLrLoggerHook, OptimizerResumeHook,
                    ParamGroupCheckHook, SafeCheckpointHook,
                    SchedulerCheckHook, ZeroCheckpointHook)
from .optim import (LayerDecayOptimWrapperConstructor, build_constructor,
                    record_param_names)
from .user_errors import UserError


def prepare_config(config: str,
                   work_dir: str | None = None,
                   resume: str | None = None,
                   amp: bool = False,
                   cfg_options: dict | None = None,
                   launcher: str = 'none') -> Config:
    """Load a config file and apply the command-line choices to it.

    Args:
        config (str): Path of the config file.
        work_dir (str, optional): Overrides ``cfg.work_dir``; without either,
            ``./work_dirs/<config name>``.
        resume (str, optional): ``'auto'`` resumes from the work dir's latest
            checkpoint, any other value is the checkpoint path.
        amp (bool): Switch the optim wrapper to ``AmpOptimWrapper``.
        cfg_options (dict, optional): Parsed ``--cfg-options``.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Raises:
        UserError: A config file that does not load, a ``--cfg-options``
            value that does not fit, a launcher whose environment variables
            are missing, ``--amp`` without a GPU.
    """
    _check_launcher_environment(launcher)
    cfg = load_config_file(config)
    merge_cfg_options(cfg, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    if amp:
        _enable_amp(cfg)
    return cfg


# What each launcher reads from the environment (mmengine.dist.init_dist,
# torch's env:// rendezvous); without them mmengine fails with a KeyError.
LAUNCHER_ENVIRONMENT = {
    'pytorch': ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
    'mpi': ('OMPI_COMM_WORLD_LOCAL_RANK', 'OMPI_COMM_WORLD_RANK',
            'OMPI_COMM_WORLD_SIZE', 'MASTER_ADDR'),
}
_STARTED_BY = {
    'pytorch': 'torchrun (bash tools/dist_train.sh CONFIG NGPUS)',
    'slurm': 'srun',
    'mpi': 'mpirun',
}


def _check_launcher_environment(launcher: str) -> None:
    missing = [name for name in LAUNCHER_ENVIRONMENT.get(launcher, ())
               if name not in os.environ]
    if missing:
        raise UserError(
            f'--launcher {launcher} needs the environment variables '
            f'{_STARTED_BY[launcher]} sets; missing: {", ".join(missing)} '
            '(without a launcher, leave out --launcher)')


def check_checkpoint_inputs(cfg: Config,
                            trust_checkpoint_code: bool = False) -> None:
    """Before the Runner is built: refuse to run while torch is told to
    load checkpoints with ``weights_only=False`` (unless
    ``trust_checkpoint_code``), and check that the checkpoint the run loads
    from ``load_from`` (``--resume PATH`` or the config's) is readable.

    ``--resume`` without a path loads whatever the work dir's latest
    checkpoint is when the Runner resumes; the variable check covers it.

    Raises:
        UserError: The variable is set; the file is missing or not a
            readable checkpoint.
    """
    refuse_forced_code_loading(trust_checkpoint_code)
    path = cfg.get('load_from')
    if not path or '://' in str(path):  # remote files are fetched later
        return
    source = '--resume' if cfg.get('resume') else 'load_from'
    check_checkpoint_file(str(path), source,
                          contents=not trust_checkpoint_code)


def check_optim_wrapper_cfg(cfg: Config) -> None:
    """Build the config's optim-wrapper constructor before the Runner, as
    ``build_optim_wrapper`` will: its checks of ``paramwise_cfg`` (unknown
    keys, bad values) need no model, so a mistake there is reported before
    the Runner's environment dump. Configs with several optim wrappers (no
    ``optimizer`` key) are left to the Runner.

    Raises:
        Whatever the constructor raises for its arguments, e.g.
        ``ValueError: unknown paramwise_cfg key 'decay_multi'``.
    """
    optim_cfg = cfg.get('optim_wrapper')
    if not isinstance(optim_cfg, dict) or 'optimizer' not in optim_cfg:
        return
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        build_constructor(optim_cfg)


def _enable_amp(cfg: Config) -> None:
    if get_device() == 'cpu':
        raise UserError('--amp needs a CUDA, NPU or MLU device; none was '
                        'found (mmengine\'s AmpOptimWrapper does not run on '
                        'the CPU)')
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise UserError('--amp works with optim_wrapper.type OptimWrapper '
                        f'or AmpOptimWrapper, got {wrapper_type!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


class FreezeBeforeWrapRunner(Runner):
    """mmengine's ``Runner``, applying ``paramwise_cfg.freeze`` of a
    :class:`~mmlr.LayerDecayOptimWrapperConstructor` to the model before it
    is wrapped, and recording the model's parameter names for schedulers
    that select optimizer groups by name (:class:`~mmlr.GroupSelect`).

    The constructor freezes when the optimizer is built, after the Runner
    wrapped the model in DDP; DDP, which fixes the parameters it reduces at
    that point, would then wait for gradients the frozen ones never get.
    ``build_runner`` uses it unless the config names a ``runner_type``.

    Args:
        Those of ``mmengine.runner.Runner``.

    Example:
        >>> runner = FreezeBeforeWrapRunner.from_cfg(
        ...     Config.fromfile('configs/vit_digits_linear_probe.py'))
    """

    def build_model(self, model) -> nn.Module:
        model = super().build_model(model)
        # names for schedulers that select optimizer groups by name, with
        # any optim-wrapper constructor
        record_param_names(model)
        optim_cfg = self.cfg.get('optim_wrapper')
        if optim_cfg is None or 'constructor' not in optim_cfg:
            return model
        constructor = build_constructor(optim_cfg)
        if isinstance(constructor, LayerDecayOptimWrapperConstructor):
            constructor.freeze(model)
        return model


class LastValMetrics(Hook):
    """Remember the metrics of the latest validation, for the summary."""

    priority = 'LOWEST'

    def __init__(self):
        self.metrics: dict = {}

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


def build_runner(cfg: Config) -> Runner:
    """Build the Runner a config describes (``runner_type`` honoured; with
    a ``strategy``, a ``FlexibleRunner``), with mmlr's hooks added: resume
    and checkpoint safety and per-layer lr logging always, the cross-rank
    group check and ZeRO checkpointing in distributed runs."""
    prepare_cpu_distributed(cfg)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    elif uses_strategy(cfg):
        runner = MmlrFlexibleRunner.from_cfg(cfg)
    else:
        runner = FreezeBeforeWrapRunner.from_cfg(cfg)
    runner.register_hook(LastValMetrics())
    checks = [
        SchedulerCheckHook, OptimizerResumeHook, SafeCheckpointHook,
        LayerLrLoggerHook
    ]
    if runner.distributed:
        # Both are no-ops in one process; ZeroCheckpointHook also without
        # a ZeroRedundancyOptimizer.
        checks += [ParamGroupCheckHook, ZeroCheckpointHook]
    for hook_type in checks:
        if not any(isinstance(h, hook_type) for h in runner.hooks):
            runner.register_hook(hook_type())
    return runner


_TOOL_RUNS = itertools.count()


def tool_logger(tool: str) -> MMLogger:
    """A new WARNING-level logger for one run of a tool, and the current one.

    mmengine logs ``print_log(logger='current')`` to the newest MMLogger and
    keeps each one, with the stdout it found when it was made, for the life
    of the process. A tool run in a process that made loggers before (a
    Runner's, a test's) would log through them; a new logger per run writes
    to this run's stdout.

    Args:
        tool (str): Part of the logger's name.
    """
    return MMLogger.get_instance(f'mmlr_{tool}_{next(_TOOL_RUNS)}',
                                 log_level=logging.WARNING)


def summary_line(runner: Runner) -> str:
    """One line with the last validation metrics and the work dir."""
    metrics = next((h.metrics for h in runner.hooks
                    if isinstance(h, LastValMetrics)), {})
    shown = ', '.join(f'{k}: {v:.2f}' if isinstance(v, float) else f'{k}: {v}'
                      for k, v in metrics.items()) or 'no validation ran'
    return f'Final validation: {shown} | work_dir: {runner.work_dir}'


__all__ = [
    'prepare_config',
    'check_checkpoint_inputs', 'check_optim_wrapper_cfg',
    'LAUNCHER_ENVIRONMENT',
    'build_runner', 'summary_line', 'end_process_group', 'tool_logger',
    'LastValMetrics', 'FreezeBeforeWrapRunner'
]
