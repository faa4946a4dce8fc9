"""``LayerDepths``: what every depth source answers, and where sources look.

A depth source is a function ``(model, names, cfg) -> LayerDepths | None``:
it gives every parameter name a ``(layer_id, num_layers)``, or None when it
does not apply to the model (see :mod:`mmlr.optim.layer_ids` for the table
of sources).
"""
from collections.abc import Callable
from dataclasses import dataclass, field

import torch.nn as nn

from .paramwise_cfg import ParamwiseCfg


@dataclass
class LayerDepths:
    """Layer ids of every parameter name and where they came from.

    Attributes:
        source (str): The source that decided (``'none'`` without decay).
        ids (dict): ``name -> (layer_id, num_layers)``.
        unplaced (list[str]): Names the source could not place (they got
            the top id).
        detail (str): What the source used, for the INFO table, e.g.
            ``'backbone.blocks, 12 blocks'`` for the trunk.
    """

    source: str
    ids: dict = field(default_factory=dict)
    unplaced: list = field(default_factory=list)
    detail: str = ''

    def describe(self) -> str:
        """``'trunk backbone.blocks, 12 blocks'``, or the source's name."""
        return f'{self.source} {self.detail}' if self.detail else self.source


DepthSource = Callable[[nn.Module, list, ParamwiseCfg], LayerDepths | None]


def backbones(model: nn.Module, paths: list | None) -> list:
    """``[(path, module), ...]`` of the trunks to decay.

    Without configured paths: the model's ``backbone`` child if it has one
    (the OpenMMLab layout), else the whole model.
    """
    if paths is None:
        child = getattr(model, 'backbone', None)
        return [('backbone', child)] if isinstance(child, nn.Module) else [
            ('', model)
        ]
    found = []
    for path in paths:
        try:
            found.append((path, model.get_submodule(path) if path else model))
        except AttributeError:
            children = [name for name, _ in model.named_children()]
            raise ValueError(
                f'paramwise_cfg.backbone {path!r} is not a submodule of '
                f'{type(model).__name__}; its children are {children}'
            ) from None
    return found
