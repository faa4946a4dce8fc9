"""Layer decay under FSDP: mmengine's ``FSDPStrategy`` as mmlr runs it.

FSDP flattens the parameters of each wrapped module into one
``FlatParameter``; with ``use_orig_params=False`` the original parameters,
and with them the names the optimizer groups are built from, are gone. This
module refuses that configuration when the groups need names, and fixes what
mmengine 0.10.7's strategy needs on the CPU and on resume. (How the
constructor reads sharded parameters: :mod:`mmlr.optim.sharded_params`.)
"""
import torch
from mmengine.device import get_device
from torch import nn

from .registry import FUNCTIONS
from .user_errors import UserError


def fsdp_strategy_class():
    """mmengine's ``FSDPStrategy``, or None where this torch lacks FSDP."""
    try:
        from mmengine._strategy.fsdp import FSDPStrategy
    except ImportError:
        return None
    return FSDPStrategy


def needs_param_names(optim_cfg) -> bool:
    """Whether an ``optim_wrapper`` config builds groups from parameter
    names: any constructor but mmengine's default, or a ``paramwise_cfg``."""
    if not isinstance(optim_cfg, dict):
        return False
    constructor = optim_cfg.get('constructor',
                                'DefaultOptimWrapperConstructor')
    name = constructor if isinstance(constructor, str) else getattr(
        constructor, '__name__', '')
    return name.split('.')[-1] != 'DefaultOptimWrapperConstructor' or bool(
        optim_cfg.get('paramwise_cfg'))


def check_fsdp_cfg(cfg) -> None:
    """Refuse an FSDP strategy with ``use_orig_params=False`` when the
    optim-wrapper config builds its groups from parameter names.

    Raises:
        UserError: Naming ``strategy.model_wrapper.use_orig_params`` and the
            fix.
    """
    strategy = cfg.get('strategy') or {}
    kind = strategy.get('type')
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    if name.split('.')[-1] != 'FSDPStrategy':
        return
    wrapper = strategy.get('model_wrapper') or {}
    # mmengine's MMFullyShardedDataParallel defaults to True
    if wrapper.get('use_orig_params', True):
        return
    if needs_param_names(cfg.get('optim_wrapper')):
        constructor = cfg.optim_wrapper.get('constructor',
                                            'DefaultOptimWrapperConstructor')
        raise UserError(
            'strategy.model_wrapper.use_orig_params=False makes FSDP flatten '
            'the parameters into one tensor per wrapped module, so '
            f'optim_wrapper (constructor {constructor!r} with its '
            'paramwise_cfg) cannot give them their own lr and weight decay; '
            'set strategy.model_wrapper.use_orig_params=True')


@FUNCTIONS.register_module()
def wrap_module_types(module: nn.Module, recurse: bool,
                      nonwrapped_numel: int,
                      module_types: tuple = ('Block', )) -> bool:
    """FSDP auto-wrap policy: every module whose class name is one of
    ``module_types`` becomes an FSDP unit of its own (its parameters are
    gathered only while it runs).

    Args:
        module (nn.Module): The module FSDP asks about.
        recurse (bool): Whether FSDP asks to look inside it (always yes).
        nonwrapped_numel (int): Unused; part of FSDP's policy signature.
        module_types (tuple[str]): Class names, e.g. timm's ``'Block'``.

    Example:
        >>> strategy = dict(
        ...     type='FSDPStrategy',
        ...     model_wrapper=dict(auto_wrap_policy=dict(
        ...         type='mmlr.wrap_module_types', module_types=['Block'])))
    """
    return recurse or type(module).__name__ in module_types


@FUNCTIONS.register_module()
def is_fsdp_unit(module: nn.Module) -> bool:
    """Activation-checkpointing check: checkpoint every FSDP unit below the
    root (the modules the wrap policy chose), so their activations are
    recomputed in the backward pass instead of kept.

    Example:
        >>> strategy = dict(
        ...     type='FSDPStrategy',
        ...     activation_checkpointing=dict(check_fn='mmlr.is_fsdp_unit'))
    """
    from torch.distributed.fsdp import FullyShardedDataParallel
    return isinstance(module, FullyShardedDataParallel)


def _load_optim_state_dict(strategy, state_dict: dict) -> None:
    # mmengine 0.10.7 passes (state_dict, model, optimizer), torch 2.0's
    # order; since torch 2.1 it is (model, optimizer, state_dict).
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    loadable = FSDP.optim_state_dict_to_load(
        model=strategy.model,
        optim=strategy.optim_wrapper.optimizer,
        optim_state_dict=state_dict)
    strategy.optim_wrapper.load_state_dict(loadable)


def adapt_fsdp_strategy(strategy) -> None:
    """Make a built ``FSDPStrategy`` resume, and wrap for CPU processes.

    - Its ``load_optim_state_dict`` calls torch's
      ``optim_state_dict_to_load`` with the arguments in torch's order.
    - Without a GPU it wraps with ``device_id=torch.device('cpu')`` (mmengine
      passes ``LOCAL_RANK``, a CUDA device number) unless the config's
      ``model_wrapper`` sets one.

    Both are changes to the strategy object: the config stays the user's.
    """
    cls = fsdp_strategy_class()
    if cls is None or not isinstance(strategy, cls):
        return
    strategy.load_optim_state_dict = _load_optim_state_dict.__get__(strategy)
    if get_device() == 'cpu':
        wrapper = dict(strategy.model_wrapper or {})
        wrapper.setdefault('type', 'MMFullyShardedDataParallel')
        wrapper.setdefault('device_id', torch.device('cpu'))
        strategy.model_wrapper = wrapper


__all__ = ['wrap_module_types', 'is_fsdp_unit', 'needs_param_names',
           'check_fsdp_cfg', 'adapt_fsdp_strategy']
