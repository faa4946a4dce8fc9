"""Which lr and weight decay every parameter gets, for any optim-wrapper
constructor: a row per optimizer group (the constructor's table) and a row
per parameter.

:class:`~mmlr.LayerDecayOptimWrapperConstructor` is asked for its plan (no
optimizer is built, so this works on meta-device models of any size); any
other constructor (mmengine's default, a downstream one) builds its
optimizer and the groups are read back from it.
"""
import csv
from dataclasses import dataclass, field

import torch.nn as nn
from mmengine.optim import OptimWrapperDict

from .constructor_build import build_constructor
from .layer_decay_constructor import LayerDecayOptimWrapperConstructor
from .param_groups import (GroupRow, format_rows, format_table, group_rows,
                           named_params)

PARAM_COLUMNS = ('name', 'shape', 'group', 'layer_id', 'lr', 'weight_decay',
                 'frozen', 'depth_source')


@dataclass
class GroupReport:
    """The constructor's class name, a :class:`GroupRow` per optimizer
    group, a dict per model parameter (keys :data:`PARAM_COLUMNS`; group
    and its values None when the parameter is in none) and the table."""

    constructor: str
    rows: list
    params: list = field(default_factory=list)
    table: str = ''


def group_report(optim_wrapper_cfg: dict, model: nn.Module) -> GroupReport:
    """Build the constructor ``optim_wrapper_cfg`` names (mmengine's default
    without one) and describe its groups for ``model`` (meta is fine).

    ``freeze`` patterns set ``requires_grad=False`` on ``model``.

    Example:
        >>> report = group_report(cfg.optim_wrapper, model)
        >>> print(report.table)
    """
    constructor = build_constructor(optim_wrapper_cfg)
    name = type(constructor).__name__
    if isinstance(constructor, LayerDecayOptimWrapperConstructor):
        groups, _, plan = constructor.plan(model)
        rows = group_rows(groups)
        where = {id(p): g for g, group in enumerate(groups)
                 for p in group.params}
        unplaced = set(plan.unplaced)
        table = format_table(rows, plan)

        def source(pname: str) -> str:
            return 'unplaced: top layer' if pname in unplaced else \
                plan.source
    else:
        rows, where = _read_back(constructor(model), model)
        table = (f'{sum(r.tensors for r in rows)} tensors in {len(rows)} '
                 f'optimizer groups ({name}); '
                 f'{sum(not p.requires_grad for p in model.parameters())} '
                 f'with requires_grad=False\n{format_rows(rows)}')

        def source(pname: str) -> str:
            return 'none (no layer decay)'
    params = []
    for pname, param, *_, shared in named_params(model):
        g = where.get(id(param))
        row = rows[g] if g is not None else None
        kind = 'frozen' if not param.requires_grad else source(pname)
        params.append(dict(zip(PARAM_COLUMNS, (
            pname, tuple(param.shape), g, row and row.layer_id,
            row and row.lr, row and row.weight_decay,
            not param.requires_grad,
            f'shared: {kind}' if shared else kind))))
    return GroupReport(name, rows, params, table)


def _read_back(wrapper, model: nn.Module) -> tuple[list, dict]:
    names = {}
    for pname, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), pname)
    rows, where = [], {}
    singles = wrapper.values() if isinstance(wrapper, OptimWrapperDict) \
        else [wrapper]
    for single in singles:
        defaults = single.optimizer.defaults
        for group in single.optimizer.param_groups:
            tensors = list(group['params'])
            for p in tensors:
                where.setdefault(id(p), len(rows))
            lr = group.get('lr')
            rows.append(GroupRow(
                len(rows), group.get('layer_id'), lr,
                lr / defaults['lr'] if lr is not None and defaults.get('lr')
                else 1.0, group.get('weight_decay'), len(tensors),
                sum(p.numel() for p in tensors),
                [names.get(id(p), '?') for p in tensors],
                {k: v for k, v in group.items()
                 if k not in ('params', 'lr', 'weight_decay')
                 and v != defaults.get(k)}))
    return rows, where


def write_param_csv(params: list[dict], path: str) -> None:
    """One row per parameter of :func:`group_report` (an empty cell: no
    group; ``shape`` as ``192x64``).

    Example:
        >>> write_param_csv(report.params, 'params.csv')
    """
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(PARAM_COLUMNS)
        for p in params:
            writer.writerow([_cell(k, v) for k, v in p.items()])


def _cell(key: str, value) -> object:
    if key == 'shape':
        return 'x'.join(map(str, value)) or 'scalar'
    if value is None:
        return ''
    return repr(value) if isinstance(value, float) else value
