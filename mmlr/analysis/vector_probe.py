"""Step every distinct group at once: one probe group whose numbers are
arrays with one element per group.

mmengine's and mmlr's schedulers compute a group's new value from that
group's own numbers (its value, ``initial_`` value, ``betas``) with
``+ - * /`` and with scalars that depend only on the step count (mmlr's
ramps also ask whether every value is zero, with ``np.any``). Run on a
float64 array, the same code performs the same IEEE operation on every
element, so one array-valued group yields, bit for bit, what one group per
element would; and a scheduler step costs about the same for 30 elements as
for one (mmengine loops over groups in Python: 30 groups cost 4 times the
time of one 30-element group, ``benchmarks/lr_curve_simulation.py``).

Only classes whose code has been checked that way are stepped as arrays
(:func:`vector_safe`): every scheduler of ``mmengine.optim.scheduler`` and
``mmlr.schedulers`` except the plateau ones, which compare values
(``tests/test_analysis_vector.py`` steps each class both ways and compares
the bits). A config with any other scheduler (a downstream package's own)
is stepped one group per curve, as it would train.
"""
import numbers

import numpy as np
from mmengine.registry import PARAM_SCHEDULERS

# Modules whose scheduler classes tests/test_analysis_vector.py covers.
VECTOR_SAFE_MODULES = ('mmengine.optim.scheduler.', 'mmlr.schedulers.')


def scheduler_class(cfg: dict) -> type | None:
    """The class ``cfg['type']`` builds, resolved as ``build`` resolves it:
    in ``cfg['_scope_']`` or the current default scope (``None`` when the
    registry does not know it)."""
    kind = cfg.get('type')
    if isinstance(kind, type):
        return kind
    with PARAM_SCHEDULERS.switch_scope_and_registry(
            cfg.get('_scope_')) as registry:
        return registry.get(kind)


def vector_safe(cls: type | None, cfg: dict | None = None) -> bool:
    """Whether ``cls`` (built from ``cfg``) may step array-valued groups: a
    class of :data:`VECTOR_SAFE_MODULES` that does not compare values
    against each other or a threshold (plateau schedulers,
    ``need_val_args``), not asked to print every value (``verbose``)."""
    return (cls is not None
            and cls.__module__.startswith(VECTOR_SAFE_MODULES)
            and not getattr(cls, 'need_val_args', False)
            and not (cfg or {}).get('verbose', False))


def stack_groups(groups: list[dict]) -> dict | None:
    """One group whose numeric settings are read-only float64 arrays over
    ``groups`` (tuples such as ``betas`` become tuples of arrays).

    Other settings (``amsgrad``, ``foreach``) must be the same in every
    group and are kept as they are. The arrays are read-only, so a
    scheduler that changed a value in place would fail instead of changing
    every alias of it.

    Args:
        groups (list[dict]): Group settings without ``params``.

    Returns:
        dict | None: The stacked group, or ``None`` when some setting is
        missing from a group or differs and is not a number (torch tensors
        as ``lr``, per-group names): such groups are stepped one by one.

    Example:
        >>> stack_groups([dict(lr=0.1, betas=(0.9, 0.999)),
        ...               dict(lr=0.2, betas=(0.9, 0.999))])['lr']
        array([0.1, 0.2])
    """
    keys = set(groups[0])
    if any(set(group) != keys for group in groups):
        return None
    stacked = {}
    for key in groups[0]:
        values = [group[key] for group in groups]
        if all(_is_number(v) for v in values):
            stacked[key] = _frozen(values)
        elif all(isinstance(v, tuple) and len(v) == len(values[0])
                 and all(_is_number(x) for x in v) for v in values):
            stacked[key] = tuple(_frozen(column) for column in zip(*values))
        elif all(_same(v, values[0]) for v in values):
            stacked[key] = values[0]
        else:
            return None
    return stacked


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _frozen(values) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):  # tensors, arrays
        return a is b


__all__ = ['VECTOR_SAFE_MODULES', 'scheduler_class', 'vector_safe',
           'stack_groups']
