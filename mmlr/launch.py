"""From a config file and command-line flags to a ready mmengine ``Runner``.

``tools/train.py`` is a thin shell over these functions, so the tests drive
the same code path a user's command does.
"""
import gc
import os
import os.path as osp

import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.device import get_device
from mmengine.hooks import Hook
from mmengine.registry import MODEL_WRAPPERS, RUNNERS
from mmengine.runner import Runner
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .hooks import (LayerLrLoggerHook, OptimizerResumeHook,
                    ParamGroupCheckHook, SafeCheckpointHook,
                    SchedulerCheckHook, ZeroCheckpointHook)
from .optim import LayerDecayOptimWrapperConstructor, build_constructor


def parse_cfg_options(items: list[str]) -> dict:
    """Parse ``KEY=VALUE`` strings as mmengine's ``DictAction`` does.

    Raises:
        ValueError: An item without ``=`` or with an empty key, named in the
            message.
    """
    options = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'expected KEY=VALUE, got {item!r}')
        options[key.strip()] = DictAction._parse_iterable(value)
    return options


def add_cfg_options(parser, example: str) -> None:
    """``--cfg-options KEY=VALUE ...`` as every tool takes it (checked by
    :func:`check_config_args`); ``example`` shows the tool's typical use."""
    parser.add_argument(
        '--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help=f'override config entries, e.g. {example}; values are parsed '
        'as Python literals, "a,b" as a list')


def check_config_args(parser, args) -> None:
    """The checks every tool makes of ``CONFIG`` and ``--cfg-options``:
    report a missing file or an unparsable option through ``parser.error``
    (one line, exit 2) and leave ``args.cfg_options`` parsed."""
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config!r} does not exist')
    try:
        args.cfg_options = parse_cfg_options(args.cfg_options)
    except ValueError as error:
        parser.error(f'argument --cfg-options: {error}')


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
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
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


def _enable_amp(cfg: Config) -> None:
    if get_device() == 'cpu':
        raise SystemExit('--amp needs a CUDA, NPU or MLU device; none was '
                         'found (mmengine\'s AmpOptimWrapper does not run on '
                         'the CPU)')
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise SystemExit('--amp works with optim_wrapper.type OptimWrapper '
                         f'or AmpOptimWrapper, got {wrapper_type!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def _prepare_cpu_distributed(cfg: Config) -> None:
    """Let the ``pytorch`` launcher run on a machine without a GPU.

    mmengine 0.10.7's launcher always calls ``torch.cuda.set_device`` and its
    default DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both are wrong for
    CPU processes. Initialise the process group with gloo here (mmengine then
    skips its own initialisation) and build DDP without device ids. With a GPU
    nothing changes.
    """
    if cfg.launcher != 'pytorch' or get_device() != 'cpu':
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    else:
        wrapper_type = MODEL_WRAPPERS.get(
            wrapper_cfg.get('type', 'MMDistributedDataParallel'))
        if isinstance(wrapper_type, type) and issubclass(
                wrapper_type, DistributedDataParallel):
            wrapper_cfg.setdefault('device_ids', None)


class FreezeBeforeWrapRunner(Runner):
    """mmengine's ``Runner``, applying ``paramwise_cfg.freeze`` of a
    :class:`~mmlr.LayerDecayOptimWrapperConstructor` to the model before it
    is wrapped.

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
    """Build the Runner a config describes (``runner_type`` honoured), with
    mmlr's hooks added: resume and checkpoint safety and per-layer lr
    logging always, the cross-rank group check and ZeRO checkpointing in
    distributed runs."""
    _prepare_cpu_distributed(cfg)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
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


def summary_line(runner: Runner) -> str:
    """One line with the last validation metrics and the work dir."""
    metrics = next((h.metrics for h in runner.hooks
                    if isinstance(h, LastValMetrics)), {})
    shown = ', '.join(f'{k}: {v:.2f}' if isinstance(v, float) else f'{k}: {v}'
                      for k, v in metrics.items()) or 'no validation ran'
    return f'Final validation: {shown} | work_dir: {runner.work_dir}'


def end_process_group(all_ranks_done: bool = True) -> None:
    """Destroy the default process group at the end of a run, and with it
    the backend's threads, while the interpreter is fully alive.

    Call it after the Runner is out of reach (no variable holds it).
    ``torch.distributed.destroy_process_group()`` alone only drops torch's
    own references to the group: DDP's reducer (and a
    ``ZeroRedundancyOptimizer``) hold it too, and the Runner holding them
    sits in reference cycles that only the garbage collector frees. The gloo
    backend and its worker threads then live on into interpreter shutdown.
    A worker may still be releasing the tensors of the last collective then
    (e.g. those of the final validation's ``broadcast_object_list``); a
    tensor whose Python object is already gone needs the GIL to be freed,
    and CPython ends a thread that takes the GIL after finalization began
    with ``pthread_exit``, which inside that C++ destructor is
    ``std::terminate``: "terminate called without an active exception",
    SIGABRT, exit code 1 after a good run. Here the cycles are collected
    first, so ``destroy_process_group()`` drops the last reference and the
    backend joins its threads now (torch releases the GIL for that, so a
    worker waiting for it finishes its work).

    Args:
        all_ranks_done (bool): Every rank finished its work (training
            succeeded). Then a barrier first makes sure no rank closes its
            connections while another still waits for its messages; after a
            failure there is no barrier, since another rank may be blocked
            in a collective that never completes.
    """
    if not torch_dist.is_initialized():
        return
    if all_ranks_done:
        torch_dist.barrier()
    gc.collect()
    torch_dist.destroy_process_group()


__all__ = [
    'parse_cfg_options', 'add_cfg_options', 'check_config_args', 'prepare_config',
    'build_runner', 'summary_line', 'end_process_group',
    'LastValMetrics', 'FreezeBeforeWrapRunner'
]
