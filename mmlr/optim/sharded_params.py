"""Parameters as FSDP leaves them: the shapes it flattened.

FSDP1 (``FullyShardedDataParallel``) flattens the parameters of each wrapped
module into one ``FlatParameter`` and keeps 1/N of it on each rank. With
``use_orig_params=True`` the original parameters keep their names, but each
is a 1-D view of this rank's piece (empty when the rank holds none of it),
so a rule such as "no weight decay for 1-D parameters" would see every
parameter as 1-D. The original shapes are kept in the ``FlatParameter``'s
metadata, read here without gathering anything.
"""
from torch import nn


def original_shapes(model: nn.Module) -> dict:
    """``{id(parameter): shape before FSDP flattened it}`` for every original
    parameter FSDP1 (``use_orig_params=True``) holds in ``model``; empty for
    a model without FSDP (FSDP2's ``fully_shard`` keeps the shapes: its
    parameters are ``DTensor`` s of the full size).

    Args:
        model (nn.Module): The model, possibly wrapped.
    """
    shapes = {}
    for module in model.modules():
        handle = getattr(module, '_handle', None)
        flat = getattr(handle, 'flat_param', None)
        if flat is None or getattr(flat, '_params', None) is None:
            continue
        for param, shape in zip(flat._params, flat._shapes):
            shapes[id(param)] = shape
        shared = getattr(flat, '_shared_params', None) or []
        for param, info in zip(shared, flat._shared_param_infos):
            # a tied weight: the shape of the parameter it shares
            prim = getattr(info.prim_module, info.prim_param_name)
            shapes[id(param)] = shapes.get(id(prim), prim.shape)
    return shapes


def flattened_names(model: nn.Module) -> list[str]:
    """Names of FSDP ``FlatParameter`` s in ``model``
    (``use_orig_params=False``: the original parameters are gone)."""
    try:
        from torch.distributed.fsdp._flat_param import FlatParameter
    except ImportError:
        return []
    return [n for n, p in model.named_parameters()
            if isinstance(p, FlatParameter)]


def refuse_flattened(model: nn.Module) -> None:
    """Refuse a model whose parameters FSDP flattened.

    Raises:
        ValueError: Naming a flattened parameter and the fix.
    """
    flattened = flattened_names(model)
    if flattened:
        raise ValueError(
            f'the model\'s parameters are flattened by FSDP (e.g. '
            f'{flattened[0]!r}), so their names and shapes are gone and '
            'cannot get their own lr and weight decay; wrap with '
            'use_orig_params=True (FSDPStrategy\'s '
            'strategy.model_wrapper.use_orig_params)')


__all__ = ['original_shapes', 'flattened_names', 'refuse_flattened']
