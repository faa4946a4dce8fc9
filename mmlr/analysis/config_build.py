"""Config file -> model and optim wrapper, without a Runner.

The model is built on the ``meta`` device when its constructor allows it, so
inspecting the schedule of a 6B-parameter model allocates no weights; the
optim wrapper comes from the configured constructor, exactly as
``Runner.build_optim_wrapper`` would make it.
"""
import copy
import logging

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

from ..cfg_options import (load_config_file, merge_cfg_options,
                           parse_cfg_options)
from ..user_errors import user_error_message


def load_config(path: str, cfg_options: list[str] | dict | None = None
                ) -> Config:
    """Read a config (importing its ``custom_imports``), apply
    ``--cfg-options`` (``KEY=VALUE`` strings or a parsed dict) and enter its
    ``default_scope`` as the Runner does. A file that does not load or an
    option that does not fit the config is a ``UserError``.

    Example:
        >>> cfg = load_config('configs/vit_digits.py',
        ...                   ['train_cfg.max_epochs=10'])
    """
    cfg = load_config_file(path)
    if isinstance(cfg_options, list):
        cfg_options = parse_cfg_options(cfg_options)
    merge_cfg_options(cfg, cfg_options)
    init_default_scope(cfg.get('default_scope') or 'mmengine')
    return cfg


def build_model(cfg: Config, device: str = 'meta') -> tuple[nn.Module, str]:
    """Build ``cfg.model`` on ``device`` (``'meta'`` or ``'cpu'``) and say
    where it was built: a model whose constructor computes on its weights
    (numpy initialisers, ``.item()``) refuses meta tensors and is built on
    the CPU, at its real size.

    Example:
        >>> model, device = build_model(load_config('configs/vit_digits.py'))
        >>> device
        'meta'
    """
    if device == 'meta':
        try:
            with torch.device('meta'):
                return MODELS.build(copy.deepcopy(cfg.model)), 'meta'
        except Exception as error:  # any constructor may refuse meta tensors
            if user_error_message(error) is not None:
                raise  # the config is wrong, not the device
            print_log(
                f'building the model on the meta device failed ({error!r}); '
                'building it on the CPU', logger='current',
                level=logging.WARNING)
    return MODELS.build(copy.deepcopy(cfg.model)), 'cpu'


def build_optim_wrapper_of(cfg: Config, model: nn.Module
                           ) -> OptimWrapper | OptimWrapperDict:
    """The optim wrapper ``Runner.build_optim_wrapper`` builds from
    ``cfg.optim_wrapper``, through its ``constructor``. Without a GPU
    ``AmpOptimWrapper`` becomes ``OptimWrapper`` (it schedules alike);
    ``ZeroRedundancyOptimizer`` is built in a one-process gloo group that
    is destroyed again at once.

    Example:
        >>> wrapper = build_optim_wrapper_of(cfg, model)
        >>> len(wrapper.optimizer.param_groups)
    """
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    if wrapper_cfg.get('type') == 'AmpOptimWrapper' and \
            not torch.cuda.is_available():
        wrapper_cfg['type'] = 'OptimWrapper'
        wrapper_cfg.pop('loss_scale', None)
        wrapper_cfg.pop('dtype', None)
    if not _needs_process_group(wrapper_cfg):
        return build_optim_wrapper(model, wrapper_cfg)
    # ZeroRedundancyOptimizer asks for the world size when built; one local
    # process has the same groups and schedule as N. Its groups are read
    # afterwards without collectives, so the group can go at once.
    torch_dist.init_process_group(
        backend='gloo', store=torch_dist.HashStore(), rank=0, world_size=1)
    try:
        return build_optim_wrapper(model, wrapper_cfg)
    finally:
        torch_dist.destroy_process_group()


def _needs_process_group(wrapper_cfg: dict) -> bool:
    optimizer_type = str((wrapper_cfg.get('optimizer') or {}).get('type'))
    return 'ZeroRedundancyOptimizer' in optimizer_type and \
        not torch_dist.is_initialized()
