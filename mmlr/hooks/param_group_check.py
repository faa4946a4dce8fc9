"""Check that every rank trains with the same parameter groups."""
import torch
import torch.nn as nn
from mmengine.dist import all_gather_object, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict

from ..registry import HOOKS
from .optimizer_layout import named_groups


def _plain(value):
    # Tensors (a tensor lr, capturable Adam's step) compare element-wise;
    # lists compare as a whole.
    return value.tolist() if isinstance(value, torch.Tensor) else value


def group_signature(optim_wrapper, model: nn.Module) -> dict:
    """Every optimizer's parameter groups as plain data.

    Args:
        optim_wrapper (OptimWrapper | OptimWrapperDict): The runner's.
        model (nn.Module): The model the optimizer trains (may be wrapped).

    Returns:
        dict: ``{optimizer name: [group, ...]}`` (name ``''`` for a single
        optimizer); each group holds its settings and, under ``params``, the
        names of its parameters in order (without FSDP's and activation
        checkpointing's wrapper levels). For a ``ZeroRedundancyOptimizer``
        these are the global groups, not the rank's shard; for DeepSpeed's
        ZeRO optimizer the model's tensors, not the rank's flat partition.
    """
    wrappers = dict(optim_wrapper.items()) if isinstance(
        optim_wrapper, OptimWrapperDict) else {'': optim_wrapper}
    return {
        name: [{
            **{k: _plain(v)
               for k, v in group.items() if k != 'params'}, 'params': names
        } for group, names in zip(wrapper.optimizer.param_groups,
                                  named_groups(wrapper.optimizer, model))]
        for name, wrapper in wrappers.items()
    }


def first_difference(signatures: list[dict]) -> str | None:
    """Where the ranks' group signatures first differ, or None.

    Args:
        signatures (list[dict]): :func:`group_signature` of rank 0, 1, ...

    Returns:
        str | None: A sentence naming the rank, optimizer, group and field.
    """
    reference = signatures[0]
    for rank, signature in enumerate(signatures[1:], start=1):
        if signature == reference:
            continue
        if signature.keys() != reference.keys():
            return (f'rank {rank} has optimizers {sorted(signature)}, '
                    f'rank 0 {sorted(reference)}')
        for name, groups in signature.items():
            where = f'optimizer {name!r}: ' if name else ''
            ref_groups = reference[name]
            if len(groups) != len(ref_groups):
                return (f'{where}rank {rank} has {len(groups)} parameter '
                        f'groups, rank 0 {len(ref_groups)}')
            for i, (group, ref) in enumerate(zip(groups, ref_groups)):
                for key in sorted(group.keys() | ref.keys()):
                    if group.get(key) != ref.get(key):
                        return (f'{where}group {i} differs in {key!r}: rank '
                                f'{rank} has {group.get(key)!r}, rank 0 '
                                f'{ref.get(key)!r}')
    return None


@HOOKS.register_module()
class ParamGroupCheckHook(Hook):
    """Stop a distributed run whose ranks built different parameter groups.

    The constructor logs its group table on rank 0 only. If another rank
    built other groups (a rank-dependent freeze, model or config), DDP and
    ZeRO would train with mismatched settings, or hang. Before the first
    iteration (after a resume, so the loaded state is compared too) this
    hook gathers every rank's groups — settings such as ``lr``,
    ``weight_decay``, ``lr_scale``, ``layer_id``, and the names of the
    parameters in order — and raises on the first difference; otherwise
    rank 0 logs one line saying they agree. Single-process runs are not
    checked.

    ``tools/train.py`` adds it to every distributed run; with another entry
    point add it as a custom hook.

    Example:
        >>> custom_hooks = [dict(type='mmlr.ParamGroupCheckHook')]
    """

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        world_size = get_world_size()
        if world_size < 2:
            return
        signatures = all_gather_object(
            group_signature(runner.optim_wrapper, runner.model))
        difference = first_difference(signatures)
        if difference is not None:
            raise RuntimeError('the ranks built different optimizer '
                               f'parameter groups: {difference}')
        groups = [g for gs in signatures[0].values() for g in gs]
        print_log(
            f'ParamGroupCheckHook: {len(groups)} parameter groups '
            f'({sum(len(g["params"]) for g in groups)} tensors) identical '
            f'on all {world_size} ranks',
            logger='current')
