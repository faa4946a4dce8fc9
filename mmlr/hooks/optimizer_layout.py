"""Which tensors each optimizer group holds, and moving a saved optimizer
state to groups that hold them differently (by parameter name)."""
import torch
from mmengine.model import is_model_wrapper

from ..optim.param_names import strip_wrappers


def group_tensors(optimizer) -> list[list[torch.Tensor]]:
    """The model's tensors in each group of ``optimizer``, in order.

    DeepSpeed's ZeRO 1/2 optimizer replaces each group's tensors by the
    rank's flat partition of them; it keeps the model's tensors of group
    ``i`` as ``bit16_groups[i]`` (the trainable ones, in the group's order).
    """
    originals = getattr(optimizer, 'bit16_groups', None)
    if originals is not None and len(originals) == len(
            optimizer.param_groups):
        return [list(tensors) for tensors in originals]
    return [list(group['params']) for group in optimizer.param_groups]


def optimizer_defaults(optimizer) -> dict:
    """The default hyper-parameters of ``optimizer``: torch's ``defaults``;
    for DeepSpeed's ZeRO optimizer, which has none, those of the torch
    optimizer it wraps."""
    if hasattr(optimizer, 'defaults'):
        return optimizer.defaults
    return getattr(getattr(optimizer, 'optimizer', None), 'defaults', {})


def named_groups(optimizer, model: torch.nn.Module) -> list[list[str]]:
    """The names of the parameters in each group of ``optimizer``, in order,
    without wrapper levels (FSDP's, activation checkpointing's), so they
    are the same under every engine."""
    if is_model_wrapper(model):
        model = model.module
    names = {id(p): strip_wrappers(n) for n, p in model.named_parameters()}
    return [[names.get(id(p), f'<unnamed {tuple(p.shape)}>') for p in group]
            for group in group_tensors(optimizer)]


def shape_mismatches(state: dict, groups: list, params: list) -> list[str]:
    """Where an optimizer state dict does not fit ``params`` (the new
    groups' parameter lists): group count, group sizes, tensor shapes."""
    if len(groups) != len(params):
        return [f'the checkpoint has {len(groups)} optimizer groups, the '
                f'config builds {len(params)}']
    found = []
    for i, (group, tensors) in enumerate(zip(groups, params)):
        if len(group['params']) != len(tensors):
            found.append(f'group {i} holds {len(group["params"])} tensors in '
                         f'the checkpoint, {len(tensors)} in the config')
            continue
        for index, tensor in zip(group['params'], tensors):
            for key, value in state.get(index, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and \
                        value.shape != tensor.shape:
                    found.append(
                        f'group {i}: state {key!r} of shape '
                        f'{tuple(value.shape)} for a tensor of shape '
                        f'{tuple(tensor.shape)}')
    return found


def remap_by_name(saved: dict, saved_names: list[list[str]],
                  names: list[list[str]], params: list) -> tuple[dict, dict]:
    """Rewrite a torch optimizer state dict for new groups, moving each
    parameter's state (moments) to where its name now is.

    Args:
        saved (dict): The checkpoint's optimizer state dict.
        saved_names (list[list[str]]): Parameter names of its groups.
        names (list[list[str]]): Parameter names of the new groups.
        params (list[list[Tensor]]): The new groups' parameters.

    Returns:
        tuple[dict, dict]: The state dict in the new layout (each new group
        takes the hyper-parameters of the checkpoint group its parameters
        came from, or ``None`` for ``mixed`` groups) and a report
        ``{'new': [...], 'dropped': [...], 'mixed': [group index, ...]}``.

    Raises:
        ValueError: A parameter whose state does not fit its new shape.
    """
    where = {}
    for group, group_names in zip(saved['param_groups'], saved_names):
        for index, name in zip(group['params'], group_names):
            where[name] = (group, index)
    state, groups, report = {}, [], {'new': [], 'dropped': [], 'mixed': []}
    new_index = 0
    placed = set()
    for i, (group_names, tensors) in enumerate(zip(names, params)):
        sources = []
        for name, tensor in zip(group_names, tensors):
            if name not in where:
                report['new'].append(name)
            else:
                old_group, old_index = where[name]
                sources.append(old_group)
                placed.add(name)
                if old_index in saved['state']:
                    moved = saved['state'][old_index]
                    for key, value in moved.items():
                        if isinstance(value, torch.Tensor) and value.dim(
                        ) > 0 and value.shape != tensor.shape:
                            raise ValueError(
                                f'cannot resume: optimizer state {key!r} of '
                                f'{name} has shape {tuple(value.shape)}, the '
                                f'parameter {tuple(tensor.shape)}')
                    state[new_index] = moved
            new_index += 1
        hyper = None
        if sources and all(s is sources[0] for s in sources):
            hyper = {k: v for k, v in sources[0].items() if k != 'params'}
        else:
            report['mixed'].append(i)
        groups.append(hyper)
    report['dropped'] = [n for n in where if n not in placed]
    return {**saved, 'state': state, 'param_groups': groups}, report
