"""Building the optim-wrapper constructor a config names, once for every
place that needs it before (or instead of) the Runner."""
import copy

import torch.nn as nn
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as CONSTRUCTORS

from .layer_decay_constructor import LayerDecayOptimWrapperConstructor
from .param_groups import group_rows


def build_constructor(optim_wrapper_cfg: dict,
                      default='DefaultOptimWrapperConstructor'):
    """The optim-wrapper constructor an ``optim_wrapper`` config names,
    built as mmengine's ``build_optim_wrapper`` builds it.

    Args:
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config; its
            ``constructor`` and ``paramwise_cfg`` become the constructor's
            type and argument, the rest its ``optim_wrapper_cfg``. Not
            modified.
        default (str | type): The constructor without a ``constructor``
            key (mmengine's default constructor, as in mmengine).

    Returns:
        The constructor; calling it with a model builds the optim wrapper.

    Example:
        >>> constructor = build_constructor(cfg.optim_wrapper)
        >>> if isinstance(constructor, LayerDecayOptimWrapperConstructor):
        ...     constructor.freeze(model)
    """
    cfg = copy.deepcopy(dict(optim_wrapper_cfg))
    return CONSTRUCTORS.build(
        dict(
            type=cfg.pop('constructor', default),
            paramwise_cfg=cfg.pop('paramwise_cfg', None),
            optim_wrapper_cfg=cfg))


def param_group_rows(model: nn.Module, optim_wrapper_cfg: dict) -> list:
    """The groups an ``optim_wrapper`` config would build, as table rows.

    For inspection tools: no optimizer is created (but ``freeze`` patterns
    set ``requires_grad=False`` on ``model``).

    Args:
        model (nn.Module): The model.
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config, including
            ``paramwise_cfg``; its ``constructor``, if any, must be this one.

    Returns:
        list[GroupRow]
    """
    constructor = build_constructor(
        optim_wrapper_cfg, default=LayerDecayOptimWrapperConstructor)
    if not isinstance(constructor, LayerDecayOptimWrapperConstructor):
        raise TypeError(
            'param_group_rows plans LayerDecayOptimWrapperConstructor\'s '
            f'groups, but optim_wrapper.constructor is '
            f'{type(constructor).__name__}; tools/param_groups.py reads any '
            'constructor\'s groups')
    groups, _, _ = constructor.plan(model)
    return group_rows(groups)
