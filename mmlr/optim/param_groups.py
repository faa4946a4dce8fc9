"""Per-parameter hyper-parameters -> merged, ordered optimizer groups.

Two steps, as in detectron2's ``reduce_param_groups``: first every trainable
parameter gets its own ``lr``, ``weight_decay`` and extra keys
(:func:`plan_params`), then parameters whose hyper-parameters are identical
share one group (:func:`merge_groups`). Few groups keep the optimizer's
multi-tensor kernels busy and torch's ``add_param_group`` (quadratic in the
number of groups) cheap; ViT-B with the MAE recipe gives 28 groups, not 152.
"""
from dataclasses import dataclass, field

import torch.nn as nn

from .layer_ids import LayerDepths
from .param_rules import ParamRules, strip_wrappers


@dataclass
class ParamPlan:
    """One trainable parameter's settings."""

    name: str
    param: nn.Parameter
    hyper: dict  # lr, weight_decay (if any) and extra optimizer keys
    layer_id: int
    lr_scale: float
    lr_mult: float = 1.0  # custom_keys / bias / DCN multiplier, for order


@dataclass
class GroupPlan:
    """One optimizer group: shared settings and its parameters."""

    hyper: dict
    layer_id: int
    lr_scale: float
    lr_mult: float = 1.0
    names: list = field(default_factory=list)
    params: list = field(default_factory=list)

    def optimizer_group(self) -> dict:
        """The dict handed to the optimizer (``lr_scale``, ``layer_id`` are
        metadata: mmengine's schedulers never read them)."""
        return dict(
            params=list(self.params),
            **self.hyper,
            lr_scale=self.lr_scale,
            layer_id=self.layer_id)


@dataclass
class PlanReport:
    """What did not go into a group, for the build-time table."""

    frozen: int = 0
    shared: list = field(default_factory=list)
    unplaced: list = field(default_factory=list)
    source: str = 'none'


def named_params(model: nn.Module):
    """``(name, param, owner, owner's parent, seen before)`` per parameter.

    Names have wrapper levels (FSDP, checkpointing, torch.compile) removed.
    A parameter reachable under two names (tied weights) is yielded at its
    first name; later names come with ``seen before=True``.
    """
    parents: dict = {}
    seen = set()
    # named_modules is pre-order: a module's parent is recorded before it.
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for child in module._modules.values():
            if child is not None:
                parents.setdefault(id(child), module)
        for leaf, param in module._parameters.items():
            if param is None:
                continue
            name = strip_wrappers(f'{mod_name}.{leaf}' if mod_name else leaf)
            yield name, param, module, parents.get(id(module)), id(
                param) in seen
            seen.add(id(param))


def plan_params(model: nn.Module, rules: ParamRules, depths: LayerDepths,
                base_lr: float, base_wd: float | None, rate: float,
                min_scale: float) -> tuple[list, PlanReport]:
    """Settings of every trainable parameter, in registration order.

    Args:
        model (nn.Module): The unwrapped model.
        rules (ParamRules): Multipliers per parameter.
        depths (LayerDepths): ``name -> (layer_id, num_layers)``.
        base_lr (float): The optimizer's ``lr``.
        base_wd (float, optional): The optimizer's ``weight_decay``.
        rate (float): Layer decay rate (1 without decay).
        min_scale (float): Lower bound of the layer scale (timm).

    Returns:
        tuple[list[ParamPlan], PlanReport]
    """
    plans, report = [], PlanReport(
        source=depths.source, unplaced=list(depths.unplaced))
    for name, param, module, parent, duplicate in named_params(model):
        if duplicate:
            report.shared.append(name)
            continue
        if not param.requires_grad:
            report.frozen += 1
            continue
        mult = rules(name, param, module, parent)
        layer_id, num_layers = depths.ids[name]
        # BEiT / mmpretrain / timm: the top layer keeps the full lr.
        scale = max(min_scale, rate**(num_layers - 1 - layer_id))
        hyper = dict(lr=base_lr * mult.lr_mult * scale)
        if base_wd is not None:
            hyper['weight_decay'] = base_wd * mult.decay_mult
        hyper.update(mult.extra)  # verbatim, as mmengine copies them
        plans.append(
            ParamPlan(name, param, hyper, layer_id, scale, mult.lr_mult))
    return plans, report


def _key(plan: ParamPlan) -> str:
    # repr keeps unhashable values (lists of betas) usable as a key.
    return repr((plan.layer_id, plan.lr_scale, sorted(plan.hyper.items())))


def merge_groups(plans: list) -> list:
    """Merge parameters with identical settings into groups.

    Groups are ordered top layer first (descending layer id); inside a
    layer, groups without an lr multiplier (at the layer's plain lr) come
    first, then by their first parameter's registration order; inside a
    group parameters keep registration order. So group 0 is at the
    optimizer's ``lr`` whenever the top layer has a trainable parameter
    without an lr multiplier: mmengine logs group 0's lr as the run's
    ``lr``, and users read that number as the lr they set. The
    order depends only on the model and the config, so a checkpoint's
    optimizer state loads back into the same groups.

    Args:
        plans (list[ParamPlan]): From :func:`plan_params`.

    Returns:
        list[GroupPlan]
    """
    groups: dict = {}
    for plan in plans:  # one dict lookup per tensor: linear in tensors
        group = groups.get(_key(plan))
        if group is None:
            group = groups[_key(plan)] = GroupPlan(
                dict(plan.hyper), plan.layer_id, plan.lr_scale, plan.lr_mult)
        group.names.append(plan.name)
        group.params.append(plan.param)
    # sorted() is stable: ties keep first-registration order.
    return sorted(groups.values(),
                  key=lambda g: (-g.layer_id, g.lr_mult != 1))


@dataclass
class GroupRow:
    """One line of the build-time table (and of ``tools/param_groups.py``)."""

    group: int
    layer_id: int
    lr: float
    lr_scale: float
    weight_decay: float | None
    tensors: int
    elements: int
    names: list
    extra: dict


def group_rows(groups: list) -> list:
    """The report rows of merged groups."""
    rows = []
    for index, group in enumerate(groups):
        extra = {
            k: v
            for k, v in group.hyper.items() if k not in ('lr', 'weight_decay')
        }
        rows.append(
            GroupRow(index, group.layer_id, group.hyper['lr'],
                     group.lr_scale, group.hyper.get('weight_decay'),
                     len(group.params),
                     sum(p.numel() for p in group.params), list(group.names),
                     extra))
    return rows


def format_table(rows: list, report: PlanReport, examples: int = 3) -> str:
    """A compact table: one line per group, a summary line first."""
    tensors = sum(r.tensors for r in rows)
    lines = [
        f'{tensors} trainable tensors in {len(rows)} group'
        f'{"s" if len(rows) != 1 else ""} (layer depths '
        f'from: {report.source}); {report.frozen} frozen left out; '
        f'{len(report.shared)} shared placed once'
    ]
    if report.unplaced:
        lines.append(
            f'{len(report.unplaced)} parameters no depth rule placed were '
            f'put at the top layer (full lr): '
            f'{", ".join(report.unplaced[:5])}'
            f'{" ..." if len(report.unplaced) > 5 else ""}')
    return '\n'.join(lines + [format_rows(rows, examples)])


def format_rows(rows: list, examples: int = 3) -> str:
    """The group lines of the table, under their column names; a group
    without a layer id (another constructor's) shows ``-``."""
    lines = [f'{"group":>5} {"layer":>5} {"lr":>10} {"lr_scale":>9} '
             f'{"wd":>8} {"tensors":>7} {"elements":>10}  names']
    for r in rows:
        layer = '-' if r.layer_id is None else r.layer_id
        wd = '-' if r.weight_decay is None else f'{r.weight_decay:.3g}'
        names = ', '.join(r.names[:examples]) + (
            f', ... (+{len(r.names) - examples})'
            if len(r.names) > examples else '')
        extra = f'  {r.extra}' if r.extra else ''
        lines.append(f'{r.group:>5} {layer:>5} {r.lr:>10.3e} '
                     f'{r.lr_scale:>9.4g} {wd:>8} {r.tensors:>7} '
                     f'{r.elements:>10}  {names}{extra}')
    return '\n'.join(lines)


def format_params(plans: list) -> str:
    """Every parameter's settings, one per line (for DEBUG)."""
    return '\n'.join(f'{p.name}: layer {p.layer_id}, lr_scale '
                     f'{p.lr_scale:.4g}, {p.hyper}' for p in plans)
