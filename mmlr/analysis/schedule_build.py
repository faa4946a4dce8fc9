"""Build a config's ``param_scheduler`` list as the Runner does, on a probe
optimizer that holds the groups' settings but no parameters.

The schedulers are the config's own classes with the config's arguments;
they read and write ``optimizer.param_groups`` only, so stepping them on a
probe gives the values training would (``tests/test_analysis_curves.py``
compares both). Every mmengine and mmlr scheduler computes a group's value
from that group's own ``lr``/``initial_lr`` (``betas`` for momentum), so the
probe holds one group per *distinct* group and each curve is paid once.
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
    """An optimizer whose ``step()`` changes nothing: it carries parameter
    groups (``params`` replaced by one meta tensor each) for schedulers to
    act on, with the real optimizer's ``defaults``.

    Example:
        >>> probe = ProbeOptimizer([dict(lr=0.1)], dict(lr=0.1))
    """

    def __init__(self, groups: list[dict], defaults: dict):
        # a group given its parameters keeps them (GroupSelect by name)
        super().__init__([
            dict(group, params=group.get('params')
                 or [torch.empty(0, device='meta')]) for group in groups
        ], dict(defaults))

    def step(self, closure=None) -> None:
        return None


@dataclass
class Track:
    """One optimizer's simulation.

    Args:
        name (str): The optim wrapper's name ('' for a single one).
        probe (OptimWrapper): Wraps a :class:`ProbeOptimizer` with one group
            per curve.
        schedulers (list): Built schedulers, in config order.
        configs (list[dict]): Their configs, with the Runner's ``end``.
        group_of (list[int]): For each real group, its curve.
        curves (list[dict]): The settings each curve starts from.
    """

    name: str
    probe: OptimWrapper
    schedulers: list
    configs: list
    group_of: list
    curves: list


def build_tracks(optim_wrapper, scheduler_cfg, length: TrainLength,
                 param: str = 'lr', merge: bool = True) -> list[Track]:
    """Probes and schedulers for a built optim wrapper, or one track per
    name of an ``OptimWrapperDict`` (``param_scheduler`` shared or a dict
    keyed by name, as ``Runner.build_param_scheduler`` takes it).

    Args:
        optim_wrapper (OptimWrapper | OptimWrapperDict): The config's.
        scheduler_cfg (dict | list | None): ``cfg.param_scheduler``.
        length (TrainLength): For default ends and ``epoch_length``.
        param (str): The parameter whose values are recorded.
        merge (bool): Simulate each distinct group once. Schedulers given
            per-group lists (``min_lr=[...]``) always get every group.

    Example:
        >>> tracks = build_tracks(wrapper, cfg.param_scheduler, length)
        >>> [type(s).__name__ for s in tracks[0].schedulers]
        ['LinearLR', 'CosineAnnealingLR']
    """
    if not isinstance(optim_wrapper, OptimWrapperDict):
        return [_track('', optim_wrapper, scheduler_cfg, length, param,
                       merge)]
    tracks = []
    for name, wrapper in optim_wrapper.items():
        cfg = scheduler_cfg
        if isinstance(cfg, dict) and 'type' not in cfg:
            cfg = cfg[name]
        tracks.append(_track(name, wrapper, cfg, length, param, merge))
    return tracks


def _track(name: str, wrapper: OptimWrapper, scheduler_cfg,
           length: TrainLength, param: str, merge: bool) -> Track:
    configs = []
    for cfg in scheduler_cfg if isinstance(scheduler_cfg, (list, tuple)) \
            else [scheduler_cfg] if scheduler_cfg else []:
        cfg = copy.deepcopy(dict(cfg))  # the Runner's default end:
        cfg.setdefault('end', length.max_epochs if cfg.get(
            'by_epoch', True) else length.max_iters)
        configs.append(cfg)
    # GroupSelect resolves its selection on the probe: every group keeps its
    # index, layer id and parameters (their names) there, each its curve.
    selective = any(_selects_groups(cfg) for cfg in configs)
    real = [{k: v for k, v in g.items() if k != 'params' or selective}
            for g in wrapper.optimizer.param_groups]
    kept, index_of, group_of = [], {}, []
    separate = not merge or selective or _has_group_lists(configs, len(real))
    for group in real:
        key = len(group_of) if separate else repr(
            [group.get(k) for k in (param, f'initial_{param}', 'betas',
                                    'momentum')])
        if key not in index_of:
            index_of[key] = len(kept)
            kept.append(group)
        group_of.append(index_of[key])
    probe = OptimWrapper(ProbeOptimizer(kept, wrapper.optimizer.defaults))
    schedulers = []
    for cfg in configs:
        args = dict(optimizer=probe)
        if length.epoch_length is not None:
            args['epoch_length'] = length.epoch_length
        scheduler = PARAM_SCHEDULERS.build(copy.deepcopy(cfg),
                                           default_args=args)
        if not isinstance(scheduler, _ParamScheduler):
            raise TypeError(f'{cfg["type"]} is not an mmengine parameter '
                            'scheduler')
        schedulers.append(scheduler)
    # In training the optimizer has stepped before the first scheduler step;
    # one step of the probe (which changes nothing) says so, and mmengine
    # then does not warn about scheduler.step() preceding optimizer.step().
    probe.step()
    return Track(name, probe, schedulers, configs, group_of, kept)


def _has_group_lists(configs: list[dict], num_groups: int) -> bool:
    # A list with one entry per group (min_lr, max_lr; plus one for the
    # pseudo group an OptimWrapper with several groups adds) must keep the
    # groups as they are; schedule lists (milestones) are left alone.
    return num_groups > 1 and any(
        isinstance(v, (list, tuple)) and len(v) in (num_groups,
                                                    num_groups + 1)
        for cfg in configs for v in cfg.values())


def _selects_groups(cfg: dict) -> bool:
    kind = cfg.get('type')
    cls = kind if isinstance(kind, type) else PARAM_SCHEDULERS.get(kind)
    return isinstance(cls, type) and issubclass(cls, GroupSelect)
