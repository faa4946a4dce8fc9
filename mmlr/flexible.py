"""Configs with a ``strategy`` key: mmengine's ``FlexibleRunner`` with what
mmlr adds to its ``Runner`` (CPU launches, checkpoint safety on resume).

mmengine's convention: a config that names a ``strategy``
(``DDPStrategy``, ``FSDPStrategy``, ``DeepSpeedStrategy`` ...) is run by
``FlexibleRunner``, which builds, wraps and checkpoints the model through
that strategy. ``mmlr.launch.build_runner`` picks it from the config.
"""
from mmengine._strategy import DDPStrategy
from mmengine.config import Config
from mmengine.device import get_device
from mmengine.registry import STRATEGIES, DefaultScope
from mmengine.runner import FlexibleRunner

from .deepspeed_strategy import (adapt_deepspeed_strategy_cfg,
                                 check_deepspeed_cfg)
from .fsdp import adapt_fsdp_strategy, check_fsdp_cfg, fsdp_strategy_class
from .hooks.safe_checkpoint import SafeCheckpointHook
from .optim import record_param_names
from .user_errors import UserError


def uses_strategy(cfg: Config) -> bool:
    """Whether ``cfg`` is run by ``FlexibleRunner`` (it has a ``strategy``;
    a ``runner_type`` of its own still decides the runner)."""
    return cfg.get('strategy') is not None


def strategy_names(default_scope: str | None = None) -> list[str]:
    """The strategy types a config can name: mmengine's (those its torch
    and installed packages support) and any registered in the config's
    scope."""
    names = set(STRATEGIES.module_dict)
    with DefaultScope.overwrite_default_scope(default_scope):
        scoped = DefaultScope.get_current_instance()
        if scoped is not None:
            registry = STRATEGIES._get_root_registry()._search_child(
                scoped.scope_name)
            if registry is not None:
                names |= set(registry.module_dict)
    return sorted(names)


def check_strategy_cfg(cfg: Config) -> None:
    """Refuse, before anything is built, a ``strategy`` that is not a dict
    with a known ``type``, and an FSDP strategy that would lose the
    parameter names the optimizer groups are built from
    (:func:`mmlr.fsdp.check_fsdp_cfg`).

    Raises:
        UserError: Naming ``strategy.type`` and the accepted names, or
            ``strategy.model_wrapper.use_orig_params`` and the fix.
    """
    if not uses_strategy(cfg):
        return
    strategy = cfg.strategy
    if not isinstance(strategy, dict):
        raise UserError('strategy must be a dict such as '
                        "dict(type='FSDPStrategy'), got "
                        f'{type(strategy).__name__}')
    kind = strategy.get('type')
    if isinstance(kind, str):
        _check_strategy_type(cfg, kind)
    check_fsdp_cfg(cfg)
    check_deepspeed_cfg(cfg)


def _check_strategy_type(cfg: Config, kind: str) -> None:
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        known = STRATEGIES.get(kind) is not None
    if not known:
        names = ', '.join(strategy_names(cfg.get('default_scope')))
        raise UserError(f'strategy.type {kind!r} is not a strategy mmengine '
                        f'knows here; accepted: {names}')


def cpu_ddp_wrapper(strategy) -> None:
    """Make a built ``DDPStrategy`` wrap its model for CPU processes.

    mmengine's ``DDPStrategy`` wraps with ``device_ids=[LOCAL_RANK]``, a CUDA
    device number; on a machine without a GPU the wrapper gets no device ids
    (keys the config's ``model_wrapper`` sets are kept). The change is made
    on the strategy object, so the config (and its copy in every checkpoint)
    stays the user's. ``FSDPStrategy``: :func:`mmlr.fsdp.adapt_fsdp_strategy`.

    Args:
        strategy (BaseStrategy): The strategy ``FlexibleRunner`` built.
    """
    fsdp = fsdp_strategy_class()
    if get_device() != 'cpu' or not isinstance(strategy, DDPStrategy) or (
            fsdp is not None and isinstance(strategy, fsdp)):
        return
    wrapper = dict(strategy.model_wrapper or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)  # mmengine's default
    wrapper.setdefault('device_ids', None)
    strategy.model_wrapper = wrapper


def record_names_before_optimizer(strategy) -> None:
    """Record the (wrapped) model's parameter names when the strategy
    builds the optim wrapper, for schedulers that select groups by name
    (``GroupSelect``) with any optim-wrapper constructor, as
    ``tools/train.py`` does for the Runner."""
    build = strategy.build_optim_wrapper

    def build_optim_wrapper(optim_wrapper, model=None):
        if model is not None:
            record_param_names(model)
        return build(optim_wrapper, model)

    strategy.build_optim_wrapper = build_optim_wrapper


class MmlrFlexibleRunner(FlexibleRunner):
    """mmengine's ``FlexibleRunner`` for CPU launches and safe resumes.

    - On a machine without a GPU, DDP and FSDP strategies wrap the model
      for the CPU (:func:`cpu_ddp_wrapper`, :func:`~mmlr.fsdp.
      adapt_fsdp_strategy`, which also fixes mmengine's FSDP resume).
    - ``DeepSpeedStrategy`` is built as :class:`~mmlr.deepspeed_strategy.
      MmlrDeepSpeedStrategy` (DeepSpeed 0.19, CPU processes, hooks and
      ``weights_only`` loads at checkpoints).
    - ``FlexibleRunner`` loads a checkpoint before its hooks' ``before_run``
      (``Runner`` after it), so :class:`~mmlr.SafeCheckpointHook` picks the
      checkpoint of ``resume=True`` (stale ``last_checkpoint``) here,
      just before loading.

    ``build_runner`` uses it for configs with a ``strategy`` and no
    ``runner_type``.

    Args:
        Those of ``mmengine.runner.FlexibleRunner``.

    Example:
        >>> cfg = Config.fromfile('configs/vit_digits_layer_decay_fsdp.py')
        >>> cfg.launcher = 'pytorch'
        >>> runner = MmlrFlexibleRunner.from_cfg(cfg)
    """

    def build_strategy(self, strategy=None, *args, **kwargs):
        strategy = super().build_strategy(
            adapt_deepspeed_strategy_cfg(strategy), *args, **kwargs)
        cpu_ddp_wrapper(strategy)
        adapt_fsdp_strategy(strategy)
        record_names_before_optimizer(strategy)
        return strategy

    def load_or_resume(self):
        if not self._has_loaded:
            for hook in self.hooks:
                if isinstance(hook, SafeCheckpointHook):
                    hook.choose_resume_checkpoint(self)
        return super().load_or_resume()


__all__ = ['uses_strategy', 'strategy_names', 'check_strategy_cfg',
           'cpu_ddp_wrapper', 'record_names_before_optimizer',
           'MmlrFlexibleRunner']
