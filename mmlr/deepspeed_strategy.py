"""Layer decay under DeepSpeed: mmengine's ``DeepSpeedStrategy`` as mmlr
runs it.

mmengine builds the optimizer from ``optim_wrapper`` (mmlr's constructor
and its per-layer groups) and hands it to ``deepspeed.initialize``, whose
ZeRO stages 1 and 2 keep every group's settings and replace its tensors by
flat partitions. What mmengine 0.10.7's strategy needs besides, all changes
to the strategy object (the config stays the user's):

- DeepSpeed 0.19 has no one-bit optimizers, whose import mmengine's
  strategy performs when it is built: the optimizers DeepSpeed has are
  registered, once per process.
- Checkpoints are loaded with ``weights_only=True`` (DeepSpeed's own loader
  passes ``weights_only=False``, which runs any code a file holds), allowing
  the three plain records DeepSpeed's ZeRO files hold besides tensors.
- The DeepSpeed config is handed over as plain dicts, so that checkpoints,
  which hold a copy, need no mmengine ``ConfigDict``.
- The runner's ``before_save_checkpoint`` and ``after_load_checkpoint``
  hooks are called (mmengine's DeepSpeed strategy skips them); on resume,
  the groups as built are kept for them and a checkpoint whose groups held
  other parameters is refused (:mod:`mmlr.deepspeed_resume`).
- On a machine without a GPU, DeepSpeed's shared-memory collectives, a C++
  extension compiled at the first run, are left out: torch's gloo backend
  carries the collectives.
"""
import json
import os.path as osp
from unittest import mock

import torch
from mmengine._strategy import deepspeed as mmengine_deepspeed
from mmengine._strategy.deepspeed import DeepSpeedStrategy
from mmengine.device import get_device
from mmengine.registry import OPTIMIZERS

from .deepspeed_resume import changed_layout_refused, groups_as_built
from .user_errors import UserError

#: the optimizers mmengine 0.10.7 registers from DeepSpeed, by module
DEEPSPEED_OPTIMIZERS = {
    'deepspeed.ops.adam': ('DeepSpeedCPUAdam', 'FusedAdam'),
    'deepspeed.ops.lamb': ('FusedLamb', ),
    # removed in DeepSpeed 0.19
    'deepspeed.runtime.fp16.onebit': ('OnebitAdam', 'OnebitLamb',
                                      'ZeroOneAdam'),
}
#: DeepSpeed config keys that compete with mmengine's optimizer and
#: schedulers: what DeepSpeed would do with them, and where they belong
COMPETING_KEYS = {
    'optimizer': ('DeepSpeed is handed the optimizer mmengine builds from '
                  'optim_wrapper{groups} and would silently ignore this one',
                  'optim_wrapper.optimizer'),
    'scheduler': ("DeepSpeed would step it after every iteration on top of "
                  "param_scheduler, overwriting the groups' lrs",
                  'param_scheduler'),
}


def is_deepspeed_strategy(strategy_cfg) -> bool:
    """Whether a ``strategy`` config names mmengine's DeepSpeed strategy
    (``'DeepSpeedStrategy'``, scoped or not, or the class)."""
    if not isinstance(strategy_cfg, dict):
        return False
    kind = strategy_cfg.get('type')
    if isinstance(kind, type):
        return issubclass(kind, DeepSpeedStrategy)
    return isinstance(kind, str) and kind.split('.')[-1] == 'DeepSpeedStrategy'


def deepspeed_config_of(strategy_cfg: dict) -> dict:
    """The DeepSpeed config a ``DeepSpeedStrategy`` config passes on: its
    ``config`` (a dict or a JSON file's path).

    Raises:
        UserError: ``config`` names a file that does not load as JSON.
    """
    config = strategy_cfg.get('config')
    if config is None:
        return {}
    if isinstance(config, str):
        try:
            with open(config) as f:
                return json.load(f)
        except (OSError, ValueError) as error:
            raise UserError(f'strategy.config: {config} is not a readable '
                            f'DeepSpeed JSON config ({error})') from None
    return dict(config)


def check_deepspeed_cfg(cfg) -> None:
    """Refuse, before anything is built, a DeepSpeed strategy that cannot
    train the config's optimizer as configured.

    mmengine builds the optimizer from ``optim_wrapper`` (with
    ``LayerDecayOptimWrapperConstructor``, one group per layer and decay
    setting) and hands it to DeepSpeed, which then ignores an ``optimizer``
    of its own config; a ``scheduler`` there would set the lrs on top of
    ``param_scheduler``. Both are refused, as is an ``optim_wrapper`` that
    is not mmengine's ``DeepSpeedOptimWrapper`` and a missing ``deepspeed``.

    Raises:
        UserError: Naming the key and the fix.
    """
    strategy = cfg.get('strategy')
    if not is_deepspeed_strategy(strategy):
        return
    config = deepspeed_config_of(strategy)
    optim_cfg = cfg.get('optim_wrapper') or {}
    for key, (effect, ours) in COMPETING_KEYS.items():
        if key not in config:
            continue
        groups = ''
        if 'constructor' in optim_cfg:
            groups = f" (constructor {optim_cfg['constructor']!r})"
        kind = config[key].get('type') if isinstance(config[key],
                                                     dict) else None
        raise UserError(
            f'strategy.config sets a DeepSpeed {key!r}'
            f'{f" ({kind!r})" if kind else ""}: '
            f'{effect.format(groups=groups)}; remove {key!r} from the '
            f'DeepSpeed config and set it in {ours}')
    wrapper_type = optim_cfg.get('type', 'OptimWrapper')
    name = wrapper_type if isinstance(wrapper_type, str) else getattr(
        wrapper_type, '__name__', '')
    if name.split('.')[-1] != 'DeepSpeedOptimWrapper':
        raise UserError(
            f"optim_wrapper.type is {name!r}; DeepSpeedStrategy steps the "
            "optimizer through DeepSpeed's engine and needs "
            "optim_wrapper.type='DeepSpeedOptimWrapper'")
    if mmengine_deepspeed.deepspeed is None:
        raise UserError("strategy.type 'DeepSpeedStrategy' needs the "
                        'deepspeed package: pip install mmlr[deepspeed]')


def register_available_optimizers() -> list[str]:
    """Register the DeepSpeed optimizers this DeepSpeed has in mmengine's
    ``OPTIMIZERS`` (mmengine's function imports all of them and registers
    them anew at every strategy build, which fails the second time).

    Returns:
        list[str]: The names now registered.
    """
    import importlib
    names = []
    for module_name, classes in DEEPSPEED_OPTIMIZERS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in classes:
            if name not in OPTIMIZERS.module_dict:
                OPTIMIZERS.register_module(module=getattr(module, name))
            names.append(name)
    return names


def plain_config(value):
    """``value`` with every mapping a ``dict`` and every sequence a
    ``list`` (mmengine's ``ConfigDict`` would be pickled into checkpoints)."""
    if isinstance(value, dict):
        return {k: plain_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_config(v) for v in value]
    return value


def deepspeed_checkpoint_globals() -> list:
    """The classes DeepSpeed's ZeRO 1/2 files hold besides tensors and
    plain data: the loss scaler (a record of its scale), the ZeRO stage (an
    int enum) and each parameter's place in the flat partition (a
    dataclass of two ints)."""
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address
    return [LossScaler, ZeroStageEnum, fragment_address]


def load_weights_only(path: str, map_location=None):
    """``torch.load`` of one DeepSpeed checkpoint file with
    ``weights_only=True`` (mmengine's records are allow-listed by mmlr's
    import, DeepSpeed's by :func:`deepspeed_checkpoint_globals` here)."""
    with torch.serialization.safe_globals(deepspeed_checkpoint_globals()):
        return torch.load(path, map_location=map_location, weights_only=True)


def _without_shared_memory_collectives() -> None:
    # DeepSpeed's CPU accelerator compiles this C++ extension when its
    # communication backend starts (minutes on a small CPU, and a compiler
    # with OpenMP); the collectives work without it over gloo. Marking it
    # incompatible in DeepSpeed's table of ops is how DeepSpeed itself
    # skips ops that cannot be built.
    import deepspeed.ops
    from deepspeed.accelerator import get_accelerator
    if get_accelerator().device_name() == 'cpu':
        deepspeed.ops.__compatible_ops__['deepspeed_shm_comm'] = False


class MmlrDeepSpeedStrategy(DeepSpeedStrategy):
    """mmengine's ``DeepSpeedStrategy`` with what it needs to train layer
    decay with DeepSpeed 0.19, on GPUs or CPU processes (see the module's
    notes). ``MmlrFlexibleRunner`` builds it for
    ``strategy=dict(type='DeepSpeedStrategy', ...)``.

    Args:
        Those of ``mmengine._strategy.DeepSpeedStrategy``.

    Example:
        >>> strategy = dict(type='DeepSpeedStrategy',
        ...                 zero_optimization=dict(stage=2))
        >>> optim_wrapper = dict(
        ...     type='DeepSpeedOptimWrapper',
        ...     constructor='LayerDecayOptimWrapperConstructor',
        ...     optimizer=dict(type='AdamW', lr=2e-3),
        ...     paramwise_cfg=dict(layer_decay_rate=0.75))
    """

    def __init__(self, **kwargs):
        with mock.patch.object(mmengine_deepspeed,
                               'register_deepspeed_optimizers',
                               register_available_optimizers):
            super().__init__(**kwargs)
        self.config = plain_config(self.config)

    def _wrap_model(self, model):
        # FlexibleRunner sets it for the type name 'DeepSpeedStrategy'
        # only; the batch size it would take is in dispatch_kwargs.
        batch = self.dispatch_kwargs.get('train_micro_batch_size_per_gpu')
        if batch is not None:
            self.config.setdefault('train_micro_batch_size_per_gpu', batch)
        if get_device() == 'cpu':
            _without_shared_memory_collectives()
        wrapper = super()._wrap_model(model)
        # DeepSpeed reads every checkpoint file through this method.
        wrapper.model.checkpoint_engine.load = load_weights_only
        return wrapper

    def save_checkpoint(self, filename: str, *, callback=None, **kwargs):
        if callback is not None:
            callback(kwargs.setdefault('extra_ckpt', {}))
        super().save_checkpoint(filename, **kwargs)

    def resume(self, filename: str, *, callback=None, **kwargs) -> dict:
        if callback is None:
            return super().resume(filename, **kwargs)
        # The hooks see the checkpoint's client state (meta, schedulers...)
        # right after DeepSpeed loaded it, before the strategy applies it.
        engine_load = self.model.load_checkpoint

        def load_then_call_hooks(*args, **load_kwargs):
            # DeepSpeed loads the optimizer's groups: OptimizerResumeHook
            # reads what the config built here.
            self.param_groups_before_resume = groups_as_built(
                getattr(self, 'optim_wrapper', None))
            with changed_layout_refused(self.model.model):
                path, client_state = engine_load(*args, **load_kwargs)
            callback(client_state)
            return path, client_state

        self.model.load_checkpoint = load_then_call_hooks
        try:
            return super().resume(filename, **kwargs)
        finally:
            del self.model.load_checkpoint


def adapt_deepspeed_strategy_cfg(strategy_cfg):
    """The strategy config ``MmlrFlexibleRunner`` builds: for mmengine's
    ``DeepSpeedStrategy``, :class:`MmlrDeepSpeedStrategy` with the same
    arguments; any other unchanged."""
    if not is_deepspeed_strategy(strategy_cfg) or (
            isinstance(strategy_cfg['type'], type)
            and strategy_cfg['type'] is not DeepSpeedStrategy):
        return strategy_cfg
    return {**strategy_cfg, 'type': MmlrDeepSpeedStrategy}


def is_deepspeed_checkpoint_dir(path: str) -> bool:
    """Whether ``path`` is a directory DeepSpeed wrote a checkpoint into."""
    return osp.isfile(osp.join(path, 'mp_rank_00_model_states.pt'))


__all__ = [
    'is_deepspeed_strategy', 'check_deepspeed_cfg', 'MmlrDeepSpeedStrategy',
    'adapt_deepspeed_strategy_cfg', 'deepspeed_checkpoint_globals',
    'load_weights_only', 'register_available_optimizers',
    'is_deepspeed_checkpoint_dir'
]
