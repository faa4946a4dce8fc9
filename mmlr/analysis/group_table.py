"""Which lr and weight decay every parameter gets, for any optim-wrapper
constructor.

mmlr's ``LayerDecayOptimWrapperConstructor`` is asked for its plan (no
optimizer is built, so this works on meta-device models of any size); any
other constructor (mmengine's ``DefaultOptimWrapperConstructor``, a
downstream one) builds its optimizer and the groups are read back from it.
"""
import csv
from dataclasses import dataclass, field

import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import OptimWrapperDict

from ..optim import (GroupRow, LayerDecayOptimWrapperConstructor,
                     build_constructor)
from ..optim.param_groups import (format_rows, format_table, group_rows,
                                  named_params)


@dataclass
class ParamRow:
    """One parameter of the model (``--per-param``)."""

    name: str
    shape: tuple
    group: int | None  # None: frozen or not in the optimizer
    layer_id: int | None
    lr: float | None
    weight_decay: float | None
    frozen: bool
    depth_source: str


@dataclass
class GroupReport:
    """The constructor's groups and every parameter's row.

    Args:
        constructor (str): The constructor's class name.
        rows (list[GroupRow]): One per optimizer group.
        params (list[ParamRow]): One per parameter of the model.
        table (str): The printed table.
    """

    constructor: str
    rows: list
    params: list = field(default_factory=list)
    table: str = ''


def group_report(cfg: Config, model: nn.Module) -> GroupReport:
    """Build ``cfg.optim_wrapper``'s constructor (mmengine's default
    without one) and describe its groups for ``model`` (meta is fine).

    Example:
        >>> cfg = load_config('configs/vit_digits_layer_decay.py')
        >>> report = group_report(cfg, build_model(cfg)[0])
        >>> print(report.table)
    """
    constructor = build_constructor(cfg.optim_wrapper)
    name = type(constructor).__name__
    if isinstance(constructor, LayerDecayOptimWrapperConstructor):
        return _planned(name, constructor, model)
    return _built(name, constructor(model), model)


def _planned(name: str, constructor, model: nn.Module) -> GroupReport:
    groups, _, report = constructor.plan(model)
    rows = group_rows(groups)
    where = {id(p): g for g, group in enumerate(groups) for p in group.params}
    unplaced = set(report.unplaced)
    params = []
    for pname, param, *_, shared in named_params(model):
        g = where.get(id(param))
        row = rows[g] if g is not None else None
        source = 'frozen' if not param.requires_grad else (
            'unplaced: top layer' if pname in unplaced else report.source)
        params.append(
            ParamRow(pname, tuple(param.shape), g,
                     row.layer_id if row else None, row.lr if row else None,
                     row.weight_decay if row else None,
                     not param.requires_grad,
                     f'shared: {source}' if shared else source))
    return GroupReport(name, rows, params, format_table(rows, report))


def _built(name: str, wrapper, model: nn.Module) -> GroupReport:
    wrappers = wrapper.items() if isinstance(wrapper, OptimWrapperDict) \
        else [('', wrapper)]
    rows, where = [], {}
    names = {}
    for pname, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(pname)
    for _, single in wrappers:
        base_lr = single.optimizer.defaults.get('lr')
        for group in single.optimizer.param_groups:
            index = len(rows)
            tensors = list(group['params'])
            for p in tensors:
                where.setdefault(id(p), index)
            extra = {k: v for k, v in group.items()
                     if k not in ('params', 'lr', 'weight_decay')
                     and v != single.optimizer.defaults.get(k)}
            lr = group.get('lr')
            rows.append(GroupRow(
                index, group.get('layer_id'), lr,
                lr / base_lr if lr is not None and base_lr else 1.0,
                group.get('weight_decay'), len(tensors),
                sum(p.numel() for p in tensors),
                [names.get(id(p), ['?'])[0] for p in tensors], extra))
    params = []
    for pname, param in model.named_parameters():
        g = where.get(id(param))
        row = rows[g] if g is not None else None
        params.append(
            ParamRow(pname, tuple(param.shape), g,
                     row.layer_id if row else None, row.lr if row else None,
                     row.weight_decay if row else None,
                     not param.requires_grad, 'none (no layer decay)'))
    frozen = sum(p.frozen for p in params)
    header = (f'{sum(r.tensors for r in rows)} tensors in {len(rows)} '
              f'optimizer groups ({name}); {frozen} with '
              'requires_grad=False')
    return GroupReport(name, rows, params, f'{header}\n{format_rows(rows)}')


def write_param_csv(params: list, path: str) -> None:
    """One row per parameter of :func:`group_report`: name, shape, group,
    layer_id, lr, weight_decay, frozen, depth_source (empty: no group).

    Example:
        >>> write_param_csv(report.params, 'params.csv')
    """
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['name', 'shape', 'group', 'layer_id', 'lr',
                         'weight_decay', 'frozen', 'depth_source'])
        for p in params:
            writer.writerow([
                p.name, 'x'.join(map(str, p.shape)) or 'scalar',
                '' if p.group is None else p.group,
                '' if p.layer_id is None else p.layer_id,
                '' if p.lr is None else repr(p.lr),
                '' if p.weight_decay is None else repr(p.weight_decay),
                p.frozen, p.depth_source
            ])
