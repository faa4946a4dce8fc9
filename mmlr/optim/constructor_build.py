"""Building the optim-wrapper constructor a config names, once for every
place that needs it before (or instead of) the Runner."""
import copy

from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as CONSTRUCTORS


def build_constructor(optim_wrapper_cfg: dict):
    """The optim-wrapper constructor an ``optim_wrapper`` config names,
    built as mmengine's ``build_optim_wrapper`` builds it.

    Args:
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config; its
            ``constructor`` and ``paramwise_cfg`` become the constructor's
            type and argument, the rest its ``optim_wrapper_cfg``. Not
            modified. Without ``constructor``, mmengine's
            ``DefaultOptimWrapperConstructor``, as in mmengine.

    Returns:
        The constructor; calling it with a model builds the optim wrapper.

    Example:
        >>> constructor = build_constructor(cfg.optim_wrapper)
        >>> if isinstance(constructor, LayerDecayOptimWrapperConstructor):
        ...     constructor.freeze(model)
    """
    cfg = copy.deepcopy(dict(optim_wrapper_cfg))
    return CONSTRUCTORS.build(
        dict(
            type=cfg.pop('constructor', 'DefaultOptimWrapperConstructor'),
            paramwise_cfg=cfg.pop('paramwise_cfg', None),
            optim_wrapper_cfg=cfg))
