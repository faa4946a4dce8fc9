"""A config's model, optim wrapper and training data, built by an mmengine
Runner as ``Runner.train()`` builds them, in a throw-away work dir.

The Runner is a real one (``runner_type`` and ``paramwise_cfg.freeze``
honoured through :func:`mmlr.launch.build_runner`), so data preprocessors,
the configured constructor (layer decay included), AMP and gradient
accumulation act as in training. Its work dir is a temporary directory,
removed afterwards: nothing is written into the config's work dir, and no
checkpoint is saved anywhere (no training loop and no hook runs). The
weights start as training would start: the model's ``init_cfg``, then
``load_from``. ``resume`` is ignored: the test starts from weights, not
from a run's optimizer state. The parameter schedulers are not built.
"""
import itertools
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

from mmengine.config import Config
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.runner import Runner
from torch import nn

from ..launch import build_runner, check_checkpoint_inputs, \
    check_optim_wrapper_cfg
from ..user_errors import UserError

# What a Runner needs to train (mmengine wants all three or none).
TRAINING_KEYS = ('train_dataloader', 'train_cfg', 'optim_wrapper')

_RUNS = itertools.count()


@dataclass
class TrainingParts:
    """What a range test trains with.

    Attributes:
        runner (Runner): The Runner that built them (its work dir is
            temporary).
        model (nn.Module): ``runner.model``, weights initialised and
            ``load_from`` loaded.
        optim_wrapper (OptimWrapper): Built by the config's constructor.
        dataloader (Iterable): The train loop's dataloader.
    """
    runner: Runner
    model: nn.Module
    optim_wrapper: OptimWrapper
    dataloader: Iterable


def check_training_keys(cfg: Config, config_name: str) -> None:
    """Refuse a config that does not train.

    Raises:
        UserError: Naming the first missing key of :data:`TRAINING_KEYS`.
    """
    for key in TRAINING_KEYS:
        if cfg.get(key) is None:
            raise UserError(
                f'{config_name} has no {key}: an lr range test trains on '
                f'the config\'s training data, so it needs '
                f'{", ".join(TRAINING_KEYS)}')


@contextmanager
def training_parts(cfg: Config, config_name: str = 'the config'
                   ) -> Iterator[TrainingParts]:
    """Build the Runner of ``cfg`` in a temporary work dir and yield its
    model, optim wrapper and train dataloader; remove the directory when
    the block ends.

    ``cfg`` is changed: ``work_dir``, a new ``experiment_name`` (Runners in
    one process must not share one), ``resume=False`` and ``log_level``
    WARNING (the Runner's environment dump and the constructor's group
    table would bury the tool's output).

    Args:
        cfg (Config): A loaded config (:func:`mmlr.launch.prepare_config`).
        config_name (str): How errors name the config.

    Raises:
        UserError: A config that does not train, an unreadable
            ``load_from``, several optim wrappers.

    Example:
        >>> with training_parts(cfg) as parts:
        ...     result = run_range_test(parts.model, parts.optim_wrapper,
        ...                             parts.dataloader, lrs)
    """
    check_training_keys(cfg, config_name)
    cfg.resume = False
    check_checkpoint_inputs(cfg)
    check_optim_wrapper_cfg(cfg)
    work_dir = tempfile.mkdtemp(prefix='mmlr_lr_find_')
    cfg.work_dir = work_dir
    cfg.experiment_name = (f'lr_find_{os.getpid()}_{next(_RUNS)}_'
                           f'{time.strftime("%Y%m%d_%H%M%S")}')
    cfg.log_level = 'WARNING'
    runner = None
    try:
        runner = build_runner(cfg)
        dataloader = runner.train_loop.dataloader
        wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        if isinstance(wrapper, OptimWrapperDict):
            raise UserError(
                'optim_wrapper builds several optimizers '
                f'({", ".join(wrapper.keys())}); the lr range test follows '
                'one optimizer')
        runner.optim_wrapper = wrapper
        # Runner.train() initialises the weights, then loads load_from.
        runner._init_model_weights()
        runner.load_or_resume()
        yield TrainingParts(runner, runner.model, wrapper, dataloader)
    finally:
        if runner is not None:
            _close_log_files(runner.logger)
        shutil.rmtree(work_dir, ignore_errors=True)


def _close_log_files(logger: logging.Logger) -> None:
    # The Runner's logger outlives it (mmengine keeps every instance); its
    # file was in the removed work dir.
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            logger.removeHandler(handler)


__all__ = ['TRAINING_KEYS', 'TrainingParts', 'check_training_keys',
           'training_parts']
