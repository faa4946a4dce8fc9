"""Where a resumed run's schedule would be had it never stopped: the
config's schedulers rebuilt and stepped on plain numbers."""
import copy
import warnings

import torch
from mmengine.optim import OptimWrapper
from mmengine.runner import EpochBasedTrainLoop


def scheduler_configs(runner, name: str):
    """The config's ``param_scheduler`` entries for optimizer ``name``, as
    mmengine's ``build_param_scheduler`` picks them."""
    cfg = runner.cfg.get('param_scheduler')
    if name and isinstance(cfg, dict) and 'type' not in cfg:
        return cfg.get(name)
    return cfg


def build_schedulers(runner, configs: list, optim_wrapper) -> list:
    """The schedulers ``configs`` describe on ``optim_wrapper``, built as
    the runner builds its own: ``Runner`` itself, ``FlexibleRunner``
    through its strategy (with the epoch length and train length the
    strategy was given)."""
    if hasattr(runner, '_build_param_scheduler'):
        return runner._build_param_scheduler(configs, optim_wrapper)
    strategy = runner.strategy
    default_args = {
        key: strategy.dispatch_kwargs[key]
        for key in ('epoch_length', 'max_epochs', 'max_iters')
        if key in strategy.dispatch_kwargs
    }
    return strategy._build_param_scheduler(configs, optim_wrapper,
                                           default_args)


def replay_schedule(runner, name: str, wrapper, schedulers: list,
                    values: list[dict], defaults: dict):
    """A plain-number optimizer with the config's values, stepped by
    freshly built copies of the config's schedulers to the resumed step, as
    ``ParamSchedulerHook`` steps them; with those schedulers.

    Args:
        runner: The resumed Runner (its config, loop and counters).
        name (str): The optimizer's name ('' for a single one).
        wrapper (OptimWrapper): The run's optim wrapper of that name.
        schedulers (list): The run's schedulers of that optimizer.
        values (list[dict]): Each group's values as the constructor built
            them (and the OptimWrapper's base group last, if it has one).
        defaults (dict): The optimizer's defaults.

    Returns:
        tuple | str: ``(probe, schedulers)``, or why the config's
        schedulers cannot be rebuilt.
    """
    real = wrapper.optimizer.param_groups
    count = len(real)
    # The run's own parameters (never stepped here): schedulers that select
    # groups by parameter name (GroupSelect) see the names they would.
    groups = [
        dict(copy.deepcopy(v), params=list(group['params']))
        for v, group in zip(values[:count], real)
    ]
    probe = OptimWrapper(
        torch.optim.Optimizer(groups, copy.deepcopy(defaults)))
    if len(values) > count:  # the OptimWrapper's base group
        probe.base_param_settings = dict(
            copy.deepcopy(values[count]), params=torch.zeros(1))
    built = []
    if schedulers:
        configs = scheduler_configs(runner, name)
        configs = configs if isinstance(configs,
                                        (list, tuple)) else [configs]
        if not all(isinstance(c, dict) for c in configs):
            return 'param_scheduler holds built schedulers, not dicts'
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            built = build_schedulers(runner, copy.deepcopy(configs), probe)
        if [type(s) for s in built] != [type(s) for s in schedulers]:
            return (f'it builds {[type(s).__name__ for s in built]}, the '
                    f'run has {[type(s).__name__ for s in schedulers]}')
    by_iter = [s for s in built if not s.by_epoch]
    by_epoch = [s for s in built if s.by_epoch]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            per_epoch = len(runner.train_dataloader)
            for _ in range(runner.epoch):
                for _ in range(per_epoch):
                    for s in by_iter:
                        s.step()
                for s in by_epoch:
                    s.step()
            rest = runner.iter - runner.epoch * per_epoch
        else:
            rest = runner.iter
        for _ in range(rest):
            for s in by_iter:
                s.step()
    return probe, built
