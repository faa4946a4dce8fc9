"""Checks of single ``paramwise_cfg`` values: numbers where numbers
belong, booleans as booleans, paths as lists of strings. Each error names
the key and what it accepts."""
import math
import numbers
from typing import Any

# custom_keys fields that scale or set an lr or a weight decay: numbers >= 0.
NON_NEGATIVE_FIELDS = ('lr_mult', 'decay_mult', 'lr', 'weight_decay')


def is_number(value: Any) -> bool:
    """An int or float (numpy's too), not a bool or a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_multiplier(name: str, value: Any) -> float:
    """A multiplier of an lr or a weight decay: a finite number >= 0.

    A string would be multiplied deep inside the build (or, through
    ``float()``, accepted); a negative or NaN one trains with negative lrs or
    a NaN loss.
    """
    if not is_number(value):
        raise TypeError(f'paramwise_cfg.{name} must be a number >= 0, got '
                        f'{value!r} ({type(value).__name__})')
    if not math.isfinite(value) or value < 0:
        raise ValueError(f'paramwise_cfg.{name} must be a finite number '
                         f'>= 0, got {value!r}')
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False``: ``bool('false')`` is True."""
    if not isinstance(value, bool):
        raise TypeError(f'paramwise_cfg.{name} must be True or False, got '
                        f'{value!r}')
    return value


def check_paths(name: str, value: Any) -> list:
    """Module paths: a list of strings, or one string as a list of one.

    ``list('backbone')`` would give one-letter paths that match nothing.
    """
    if value is None:
        return []
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, (list, tuple)) or not all(
            isinstance(p, str) and p.strip('.') for p in paths):
        raise TypeError(f'paramwise_cfg.{name} must be a module path or a '
                        "list of them, e.g. ['backbone.patch_embed'], got "
                        f'{value!r}')
    return list(paths)


def check_custom_keys(custom_keys: Any) -> dict:
    """``{substring: dict(field=value)}`` with numbers where they belong."""
    if not isinstance(custom_keys, dict) or not all(
            isinstance(k, str) and isinstance(v, dict)
            for k, v in custom_keys.items()):
        raise TypeError('paramwise_cfg.custom_keys must be a dict of dicts '
                        "with string keys, e.g. {'head': dict(lr_mult=10.)}, "
                        f'got {custom_keys!r}')
    for key, fields in custom_keys.items():
        for name in NON_NEGATIVE_FIELDS:
            if name in fields:
                check_multiplier(f'custom_keys[{key!r}].{name}', fields[name])
    return custom_keys


def check_levels(value: Any) -> list:
    """InternVL's ``freeze_backbone``: level indices."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0
            for i in value):
        raise TypeError('paramwise_cfg.freeze_backbone must be a list of '
                        f'level indices >= 0, e.g. [0, 1], got {value!r}')
    return list(value)


def check_custom_field(where: str, value: Any, default: Any) -> None:
    """An optimizer argument set by ``custom_keys``: of its default's type.

    torch copies group keys verbatim, so ``eps='1e-8'`` would fail at the
    first step and ``amsgrad='false'`` would be read as True.

    Args:
        where (str): ``"custom_keys['head'].eps"``, for the message.
        value: The configured value.
        default: The optimizer's default for the argument (unchecked when it
            has none or it is None).
    """
    if isinstance(default, bool):
        ok, what = isinstance(value, bool), 'True or False'
    elif is_number(default):
        ok, what = is_number(value), 'a number'
        if ok and not math.isfinite(value):
            raise ValueError(f'paramwise_cfg.{where} must be finite, got '
                             f'{value!r}')
    elif isinstance(default, (tuple, list)) and all(map(is_number, default)):
        ok = isinstance(value, (tuple, list)) and len(value) == len(
            default) and all(map(is_number, value))
        what = f'{len(default)} numbers'
    elif isinstance(default, str):
        ok, what = isinstance(value, str), 'a string'
    else:
        return
    if not ok:
        raise TypeError(f'paramwise_cfg.{where} must be {what}, like the '
                        f"optimizer's default {default!r}, got {value!r}")
