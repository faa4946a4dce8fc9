"""Build a config's ``param_scheduler`` list as the Runner does, on a probe
optimizer: every mmengine and mmlr scheduler computes a group's value from
that group's own entries (``lr``, ``initial_lr``, ``betas``, ...), so the
probe holds one group per *distinct* group and each curve is stepped once.
"""
import copy
from dataclasses import dataclass

import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS

from ..schedulers import GroupSelect
from .train_length import TrainLength


class ProbeOptimizer(torch.optim.Optimizer):
    """An optimizer whose ``step()`` changes nothing: parameter groups for
    schedulers to act on, each holding its own ``params`` (GroupSelect
    selects by their names) or one empty meta tensor.

    Example:
        >>> probe = ProbeOptimizer([dict(lr=0.1)], dict(lr=0.1))
    """

    def __init__(self, groups: list[dict], defaults: dict):
        super().__init__([
            dict(group, params=group.get('params')
                 or [torch.empty(0, device='meta')]) for group in groups
        ], dict(defaults))

    def step(self, closure=None) -> None:
        return None


@dataclass
class Track:
    """One optimizer's simulation: its name in an ``OptimWrapperDict`` (''
    for a single optimizer), the probe (one group per curve), the built
    schedulers and their configs (with the Runner's default ``end``), each
    real group's curve (``group_of``) and the settings each curve starts
    from (``curves``)."""

    name: str
    probe: OptimWrapper
    schedulers: list
    configs: list
    group_of: list
    curves: list


def build_tracks(optim_wrapper, scheduler_cfg, length: TrainLength,
                 param: str = 'lr', merge: bool = True) -> list[Track]:
    """Probe and schedulers of an optim wrapper, or one track per name of
    an ``OptimWrapperDict`` (``param_scheduler`` shared, or a dict by name as
    ``Runner.build_param_scheduler`` takes it).

    Args:
        optim_wrapper (OptimWrapper | OptimWrapperDict): The config's.
        scheduler_cfg (dict | list | None): ``cfg.param_scheduler``.
        length (TrainLength): For default ends and ``epoch_length``.
        param (str): The value to be recorded. Defaults to ``'lr'``.
        merge (bool): Step each distinct group once. Per-group lists
            (``min_lr=[...]``) and GroupSelect always get every group.

    Example:
        >>> tracks = build_tracks(wrapper, cfg.param_scheduler, length)
        >>> [type(s).__name__ for s in tracks[0].schedulers]
        ['LinearLR', 'CosineAnnealingLR']
    """
    if not isinstance(optim_wrapper, OptimWrapperDict):
        return [_track('', optim_wrapper, scheduler_cfg, length, param,
                       merge)]
    return [
        _track(name, wrapper, scheduler_cfg[name] if isinstance(
            scheduler_cfg, dict) and 'type' not in scheduler_cfg else
            scheduler_cfg, length, param, merge)
        for name, wrapper in optim_wrapper.items()
    ]


def _track(name: str, wrapper: OptimWrapper, scheduler_cfg,
           length: TrainLength, param: str, merge: bool) -> Track:
    configs = []
    for cfg in scheduler_cfg if isinstance(scheduler_cfg, (list, tuple)) \
            else [scheduler_cfg] if scheduler_cfg else []:
        cfg = copy.deepcopy(dict(cfg))  # the Runner's default end:
        cfg.setdefault('end', length.max_epochs if cfg.get(
            'by_epoch', True) else length.max_iters)
        configs.append(cfg)
    # GroupSelect resolves its selection on the probe: there every group
    # keeps its index, layer id and parameters (their names).
    selective = any(_selects_groups(cfg) for cfg in configs)
    real = [{k: v for k, v in g.items() if k != 'params' or selective}
            for g in wrapper.optimizer.param_groups]
    separate = not merge or selective or _has_group_lists(configs, len(real))
    kept, index_of, group_of = [], {}, []
    for group in real:
        key = len(group_of) if separate else repr(
            [group.get(k) for k in (param, f'initial_{param}', 'betas',
                                    'momentum')])
        if key not in index_of:
            index_of[key] = len(kept)
            kept.append(group)
        group_of.append(index_of[key])
    probe = OptimWrapper(ProbeOptimizer(kept, wrapper.optimizer.defaults))
    args = dict(optimizer=probe)
    if length.epoch_length is not None:
        args['epoch_length'] = length.epoch_length
    schedulers = [PARAM_SCHEDULERS.build(copy.deepcopy(cfg),
                                         default_args=dict(args))
                  for cfg in configs]
    for cfg, scheduler in zip(configs, schedulers):
        if not isinstance(scheduler, _ParamScheduler):
            raise TypeError(f'{cfg["type"]} is not an mmengine parameter '
                            'scheduler')
    # In training the optimizer has stepped before the first scheduler step;
    # a step of the probe says so (mmengine warns otherwise).
    probe.step()
    return Track(name, probe, schedulers, configs, group_of, kept)


def _has_group_lists(configs: list[dict], num_groups: int) -> bool:
    # A list with one entry per group (min_lr, max_lr; plus one for the
    # pseudo group an OptimWrapper with several groups adds) keeps the
    # groups as they are; schedule lists (milestones) do not.
    return num_groups > 1 and any(
        isinstance(v, (list, tuple)) and len(v) in (num_groups,
                                                    num_groups + 1)
        for cfg in configs for v in cfg.values())


def _selects_groups(cfg: dict) -> bool:
    kind = cfg.get('type')
    cls = kind if isinstance(kind, type) else PARAM_SCHEDULERS.get(kind)
    return isinstance(cls, type) and issubclass(cls, GroupSelect)
