"""Which parameter names each optimizer group holds, for schedulers that
are built with the optimizer only.

The names are recorded where the model is at hand: by
:class:`~mmlr.LayerDecayOptimWrapperConstructor` when it builds the
optimizer, and by ``tools/train.py`` for the model of any config. The
record is kept beside the parameters (weakly, so it goes with them); nothing
is added to the optimizer or its state dict.
"""
import weakref

import torch
from mmengine.model import is_model_wrapper

from .param_names import strip_wrappers

# id(parameter) -> (weak reference to it, its name without wrapper levels).
# Not a WeakKeyDictionary: tensors compare element-wise, not by identity.
_NAMES: dict[int, tuple[weakref.ref, str]] = {}


def _forget(key: int, ref: weakref.ref) -> None:
    if _NAMES.get(key, (None, ))[0] is ref:
        del _NAMES[key]


def _name_of(param) -> str | None:
    ref, name = _NAMES.get(id(param), (None, None))
    return name if ref is not None and ref() is param else None


def record_param_names(model: torch.nn.Module) -> None:
    """Remember the name of every parameter of ``model``.

    A parameter already named keeps its first name, so names read from the
    whole model (``tools/train.py``) win over names read from a part of it
    (a constructor given one member of an ``OptimWrapperDict``).

    Args:
        model (nn.Module): The model; a model wrapper (DDP) is unwrapped.
    """
    if is_model_wrapper(model):
        model = model.module
    for name, param in model.named_parameters(remove_duplicate=False):
        if _name_of(param) is None:
            key = id(param)
            ref = weakref.ref(param, lambda ref, key=key: _forget(key, ref))
            _NAMES[key] = (ref, strip_wrappers(name))


def group_param_names(param_groups: list) -> list[list[str]] | None:
    """The names of the parameters of each group, or None when a parameter
    has no recorded name (the optimizer was built elsewhere)."""
    names = []
    for group in param_groups:
        group_names = [_name_of(p) for p in group['params']]
        if None in group_names:
            return None
        names.append(group_names)
    return names
