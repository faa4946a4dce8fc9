"""The ``mmlr`` scope: child registries of mmengine's root registries.

Two rules decide where a name is visible:

1. Everything mmlr defines is registered here, in the ``mmlr`` scope, so
   ``type='mmlr.<Name>'`` (or ``constructor='mmlr.<Name>'``) builds it from
   any default scope. mmengine imports ``mmlr.registry`` for a scoped name and
   each registry lists the modules (``locations``) that fill it, so this works
   even without ``custom_imports``.
2. When :mod:`mmlr` is imported (``custom_imports=dict(imports=['mmlr'])``),
   every name that is still **free** in mmengine's root registry is also added
   there, so the bare name resolves under any default scope (``mmengine``,
   none, or a downstream one such as ``mmpretrain``). A name the root already
   holds keeps meaning its owner's class: bare ``LinearLR`` stays mmengine's,
   and ours is reached as ``mmlr.LinearLR`` or under ``default_scope='mmlr'``.
   Nothing that exists in the root is ever replaced.
"""
import logging

from mmengine.logging import print_log
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import Registry

PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMENGINE_PARAM_SCHEDULERS,
    scope='mmlr',
    locations=['mmlr.schedulers'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmlr',
    locations=['mmlr.optim'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmlr', locations=['mmlr.hooks'])
# FSDP wrap policies and activation-checkpointing checks, by 'mmlr.<name>'
# only (FSDPStrategy looks them up by name).
FUNCTIONS = Registry(
    'function', parent=MMENGINE_FUNCTIONS, scope='mmlr',
    locations=['mmlr.fsdp'])
# The demo's model, data set and metric: filled only when the demo is used.
MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmlr', locations=['mmlr.demo'])
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, scope='mmlr', locations=['mmlr.demo'])
METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, scope='mmlr', locations=['mmlr.demo'])

# Names we deliberately leave to their first owner without a warning: the root
# registry's own classes of the same name are the ones bare configs mean.
EXPECTED_ROOT_OWNERS = {'LinearLR'}


def export_free_names(registry: Registry) -> list:
    """Add each class of an mmlr registry to its parent under a free name.

    Args:
        registry (Registry): One of the child registries above.

    Returns:
        list[str]: The names added to the parent (root) registry.
    """
    root = registry.parent
    added = []
    for name, cls in registry.module_dict.items():
        owner = root.module_dict.get(name)
        if owner is None:
            root.register_module(name=name, module=cls)
            added.append(name)
        elif owner is not cls and name not in EXPECTED_ROOT_OWNERS:
            print_log(
                f'{name} is already registered in mmengine\'s {root.name} '
                f'registry by {owner.__module__}; bare type=\'{name}\' keeps '
                f'meaning that class. Write type=\'mmlr.{name}\' to use '
                'mmlr\'s.',
                logger='current',
                level=logging.WARNING)
    return added
