"""Per-parameter lr and weight-decay multipliers from ``paramwise_cfg``.

The rules of mmengine's ``DefaultOptimWrapperConstructor`` with three
repairs:

* a ``custom_keys`` entry sets only the fields it names; the others fall
  through to the generic rules (mmengine #846, where ``lr_mult`` alone
  silently cancelled ``norm_decay_mult``);
* norms include ``nn.RMSNorm`` and any class whose name ends in ``Norm``
  (timm's ``RmsNorm``, ``LayerNorm2d``); depthwise convs are 1-, 2- or 3-D;
* the model's own ``no_weight_decay()`` / ``no_weight_decay_keywords()``
  are honoured (timm, InternVL), unless ``model_hints=False``.

Precedence per field: custom key > model hint (weight decay only) > generic
rule > 1.
"""
import fnmatch
import functools
import re
from dataclasses import dataclass, field

import torch.nn as nn
from mmengine.utils.dl_utils import mmcv_full_available
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from .param_names import relative_name
from .paramwise_cfg import ParamwiseCfg

NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm, nn.RMSNorm,
         nn.LocalResponseNorm)
# InternImage's DCNv3 parameters that InternVL's DCN_LR_MUL scales.
DCN_NAMES = ('offset', 'attention_weights', 'center_feature_scale_proj',
             'alpha_beta')


def is_norm(module: nn.Module) -> bool:
    return _is_norm_class(type(module))


@functools.lru_cache(maxsize=None)
def _is_norm_class(cls: type) -> bool:
    # Once per class, not per parameter: the name search walks the MRO.
    return issubclass(cls, NORMS) or any(
        re.search(r'Norm(\dd)?$', c.__name__) for c in cls.__mro__[:-1])


def is_dwconv(module: nn.Module) -> bool:
    # mmengine's test (in_channels == groups), for Conv1d/2d/3d alike.
    return isinstance(module, _ConvNd) and module.in_channels == module.groups


def _dcn_types() -> tuple:
    # mmengine only knows DCN modules when mmcv-full is installed; with
    # mmcv-lite dcn_offset_lr_mult is inert there, and so it is here.
    if not mmcv_full_available():
        return ()
    from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
    return (DeformConv2d, ModulatedDeformConv2d)


@dataclass
class Multipliers:
    """What the rules decided for one parameter."""

    lr_mult: float = 1.0
    decay_mult: float = 1.0
    extra: dict = field(default_factory=dict)


@dataclass
class NoDecayHints:
    """``no_weight_decay()`` patterns and keywords, per defining module."""

    patterns: list = field(default_factory=list)  # (path, fnmatch pattern)
    keywords: list = field(default_factory=list)  # (path, substring)

    @classmethod
    def of(cls, modules: list) -> 'NoDecayHints':
        """Collect the hints of ``[(path, module), ...]``."""
        hints = cls()
        for path, module in modules:
            if callable(getattr(module, 'no_weight_decay', None)):
                hints.patterns += [(path, p) for p in module.no_weight_decay()]
            if callable(getattr(module, 'no_weight_decay_keywords', None)):
                hints.keywords += [(path, k)
                                   for k in module.no_weight_decay_keywords()]
        return hints

    def __call__(self, name: str) -> bool:
        for path, pattern in self.patterns:
            rel = relative_name(name, path)
            # timm matches with fnmatch, InternVL by equality: fnmatch does
            # both for names without wildcards.
            if rel is not None and fnmatch.fnmatchcase(rel, pattern):
                return True
        for path, key in self.keywords:
            rel = relative_name(name, path)
            if rel is not None and key in rel:
                return True
        return False


class ParamRules:
    """Decide each parameter's multipliers from a checked ``paramwise_cfg``.

    Args:
        cfg (ParamwiseCfg): The checked config.
        hints (NoDecayHints): The model's no-decay hints (empty when
            ``model_hints=False``).
        has_wd (bool): Whether the optimizer has a ``weight_decay``.
    """

    def __init__(self, cfg: ParamwiseCfg, hints: NoDecayHints, has_wd: bool,
                 shapes: dict | None = None):
        self.cfg = cfg
        self.hints = hints
        self.has_wd = has_wd
        # {id(param): original shape} of parameters FSDP flattened
        self.shapes = shapes or {}
        # mmengine's order: longest key first, ties alphabetical.
        self.keys = sorted(sorted(cfg.custom_keys), key=len, reverse=True)
        self.dcn_types = _dcn_types()

    def __call__(self, name: str, param: nn.Parameter, module: nn.Module,
                 parent: nn.Module | None) -> Multipliers:
        """Multipliers of parameter ``name`` owned by ``module``."""
        cfg, out = self.cfg, Multipliers()
        leaf = name.rsplit('.', 1)[-1]
        module_path = name.rpartition('.')[0]
        norm = is_norm(module)
        in_dcn = bool(self.dcn_types) and isinstance(parent, self.dcn_types)
        if leaf == 'bias' and not (norm or in_dcn) and cfg.bias_lr_mult \
                is not None:
            out.lr_mult = cfg.bias_lr_mult
        if ('conv_offset' in module_path and in_dcn
                and cfg.dcn_offset_lr_mult is not None
                and isinstance(module, nn.Conv2d)):
            out.lr_mult = cfg.dcn_offset_lr_mult
        if cfg.dcn_lr_mult is not None and any(k in name for k in DCN_NAMES):
            out.lr_mult *= cfg.dcn_lr_mult
        if self.has_wd:
            if norm and cfg.norm_decay_mult is not None:
                out.decay_mult = cfg.norm_decay_mult
            elif (leaf == 'bias' and not in_dcn
                  and cfg.bias_decay_mult is not None):
                out.decay_mult = cfg.bias_decay_mult
            elif is_dwconv(module) and cfg.dwconv_decay_mult is not None:
                out.decay_mult = cfg.dwconv_decay_mult
            elif (len(self.shapes.get(id(param), param.shape)) <= 1
                  and not in_dcn
                  and cfg.flat_decay_mult is not None):
                out.decay_mult = cfg.flat_decay_mult
            if self.hints(name):
                out.decay_mult = 0.0
        # mmengine matches f'{prefix}.{name}', which has a leading dot only
        # at the root; a dot in front of every name treats keys such as
        # '.cls_token' the same at any depth.
        dotted = '.' + name
        key = next((k for k in self.keys if k in dotted), None)
        if key is not None:
            for field_name, value in self.cfg.custom_keys[key].items():
                if field_name == 'lr_mult':
                    out.lr_mult = value
                elif field_name == 'decay_mult':
                    out.decay_mult = value
                else:
                    out.extra[field_name] = value
        return out
