"""Config file -> model and optim wrapper, as the Runner builds them but
without one, for the inspection tools (``vis_lr.py``, ``param_groups.py``).
The model goes on the ``meta`` device where its constructor allows, so
inspecting a 6B-parameter model allocates no weights."""
import copy
import logging

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

from .cfg_options import (load_config_file, merge_cfg_options,
                          parse_cfg_options)
from .user_errors import user_error_message


def load_config(path: str, cfg_options: list[str] | dict | None = None
                ) -> Config:
    """Read a config (importing its ``custom_imports``), apply
    ``--cfg-options`` (``KEY=VALUE`` strings or a parsed dict) and enter its
    ``default_scope`` as the Runner does; a bad file or option is a
    ``UserError``.

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
    where: a model whose constructor computes on its weights (numpy
    initialisers, ``.item()``) refuses meta tensors and is built on the CPU.

    Example:
        >>> model, device = build_model(load_config('configs/vit_digits.py'))
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
    """``cfg.optim_wrapper`` built through its ``constructor``. Without a
    GPU an ``AmpOptimWrapper`` becomes an ``OptimWrapper`` (it schedules
    alike); a ``ZeroRedundancyOptimizer`` is built in a one-process gloo
    group, destroyed again at once.

    Example:
        >>> wrapper = build_optim_wrapper_of(cfg, model)
    """
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    if wrapper_cfg.get('type') == 'AmpOptimWrapper' and \
            not torch.cuda.is_available():
        wrapper_cfg['type'] = 'OptimWrapper'
        wrapper_cfg.pop('loss_scale', None)
        wrapper_cfg.pop('dtype', None)
    optimizer_type = str((wrapper_cfg.get('optimizer') or {}).get('type'))
    if 'ZeroRedundancyOptimizer' not in optimizer_type or \
            torch_dist.is_initialized():
        return build_optim_wrapper(model, wrapper_cfg)
    # It asks for the world size when built; one process has the same
    # groups and schedule as N, and they are read without collectives.
    torch_dist.init_process_group(
        backend='gloo', store=torch_dist.HashStore(), rank=0, world_size=1)
    try:
        return build_optim_wrapper(model, wrapper_cfg)
    finally:
        torch_dist.destroy_process_group()
