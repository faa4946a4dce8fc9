"""``LinearLR`` and ``LinearDecayLR``: linear learning-rate ramps."""
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin

from ..registry import PARAM_SCHEDULERS
from .ramp import LinearRampScheduler


@PARAM_SCHEDULERS.register_module()
class LinearLR(LRSchedulerMixin, LinearRampScheduler):
    """Ramp each group's lr linearly from ``start_factor`` to ``end_factor``
    of its base lr over ``[begin, end)``, then hold it.

    Gives mmengine's ``LinearLR`` numbers on mmengine's arguments and
    composes with other schedulers the same way (chainable), and fixes its
    edge cases: ``start_factor=0`` warms up from zero without dividing by
    zero, and a one-step window (``end - begin == 1``) applies
    ``end_factor`` instead of leaving ``start_factor`` in place forever.
    mmlr's ramps share the value beneath their factors, so together they
    give the product of their factors in any order, zeros included; an
    mmengine scheduler that changes the lr while a warm-up from 0 holds it
    at 0 multiplies 0, and that change is lost.
    Registered as ``mmlr.LinearLR``; bare ``LinearLR`` keeps meaning
    mmengine's except under ``default_scope='mmlr'``.

    Args:
        optimizer (Optimizer | OptimWrapper): Wrapped optimizer.
        start_factor (float, optional): Factor of the base lr at ``begin``,
            in [0, 1]. Defaults to 1/3 (mmengine's default).
        end_factor (float, optional): Factor at step ``end - 1`` and after,
            in [0, 1]. Defaults to 1.0.
        begin (int): First step of the ramp. Defaults to 0.
        end (int): Step after the last of the ramp. Required outside a
            Runner (the Runner fills in ``max_epochs``/``max_iters``).
        last_step (int): Must be -1; resume with ``load_state_dict``.
        by_epoch (bool): Count epochs (True) or iterations. Defaults to True.
        verbose (bool): Log every change. Defaults to False.
        start_lr (float, optional): Absolute start (timm's
            ``warmup_lr_init``) instead of ``start_factor``: the factor is
            ``start_lr / optimizer lr``, so groups with their own lr (layer
            decay) keep their ratios; the optimizer lr must be above 0.
        end_lr (float, optional): Absolute end (olm's ``end_lr``) instead of
            ``end_factor``, scaled the same way.
        total_steps (int, optional): olm's spelling of the length: the ramp
            reaches its end value after ``total_steps`` steps, i.e.
            ``end = begin + total_steps + 1``. It replaces ``end``: a Runner
            fills ``end`` in from ``max_epochs``/``max_iters``, and an
            ``end`` beside ``total_steps`` is logged and not used.

    Example:
        >>> # warm up from an absolute 1e-6 over the first epoch, by iteration
        >>> param_scheduler = [
        ...     dict(type='mmlr.LinearLR', start_lr=1e-6, end=1,
        ...          by_epoch=True, convert_to_iter_based=True),
        ...     dict(type='CosineAnnealingLR', begin=1, by_epoch=True)]
    """


@PARAM_SCHEDULERS.register_module()
class LinearDecayLR(LRSchedulerMixin, LinearRampScheduler):
    """Decay each group's lr linearly to zero (olm's ``LinearDecayLR``).

    The same ramp as :class:`LinearLR` with defaults ``start_factor=1.0``
    and ``end_factor=0.0``: base 0.1 and ``total_steps=4`` give 0.1, 0.075,
    0.05, 0.025, 0, then 0. Accepts every argument of :class:`LinearLR`.

    Example:
        >>> param_scheduler = dict(type='LinearDecayLR', by_epoch=True)
    """

    default_start_factor = 1.0
    default_end_factor = 0.0
