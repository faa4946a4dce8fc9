"""The ``paramwise_cfg`` keys the layer-decay constructor understands.

One place that knows every accepted key, the spellings other OpenMMLab
repositories and timm use for the same thing, and what is allowed for each.
Everything is checked when the constructor is built, so a typo fails before
training starts, with the nearest known key in the message.
"""
import difflib
from dataclasses import dataclass, field
from typing import Any

from .paramwise_checks import (check_bool, check_custom_keys, check_levels,
                               check_multiplier, check_paths)

# Keys of mmengine's DefaultOptimWrapperConstructor, same meaning here.
MMENGINE_KEYS = ('custom_keys', 'bias_lr_mult', 'bias_decay_mult',
                 'norm_decay_mult', 'dwconv_decay_mult', 'flat_decay_mult',
                 'dcn_offset_lr_mult', 'bypass_duplicate')
# Multipliers of the optimizer's weight_decay: meaningless without it.
DECAY_MULT_KEYS = ('bias_decay_mult', 'norm_decay_mult', 'dwconv_decay_mult',
                   'flat_decay_mult')
LAYER_DECAY_KEYS = (
    'layer_decay_rate',  # mmpretrain, mmpose (ViTPose)
    'decay_rate',  # mmseg, mmdet: same as layer_decay_rate
    'decay_type',  # mmseg, mmdet: 'layer_wise(_vit)' | 'stage_wise'
    'num_layers',  # mmseg, mmdet, mmpose: number of blocks (+2 layers)
    'layer_decay_min_scale',  # timm
    'depth_source',  # which source decides layer depths
    'depth_rules',  # [(regex, depth), ...] searched in parameter names
    'backbone',  # path(s) of the trunk module(s); None = auto
    'model_hints',  # honour no_weight_decay() & co. of the model
    'dcn_lr_mult',  # InternVL's DCN_LR_MUL
    'freeze',  # module paths whose parameters are frozen
    'keep_trainable',  # module paths exempt from ``freeze``
    'freeze_backbone',  # InternVL: level indices -> 'levels.{i}'
)
KNOWN_KEYS = MMENGINE_KEYS + LAYER_DECAY_KEYS
DEPTH_SOURCES = ('auto', 'rules', 'mmseg', 'get_layer_depth',
                 'lr_decay_keywords', 'group_matcher', 'trunk')
# mmseg's LearningRateDecayOptimizerConstructor tests ``'layer_wise' in
# decay_type``, so 'layer_wise_vit' (what its BEiT constructor sets) is
# layer-wise too.
DECAY_TYPES = ('layer_wise', 'layer_wise_vit', 'stage_wise')


def nearest(word: str, choices) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or ``''``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ''


@dataclass
class ParamwiseCfg:
    """A checked ``paramwise_cfg`` with every spelling normalised.

    ``num_layers`` here is the total number of layer ids (the mmseg/mmpose
    ``num_layers`` + 2), or None when the depth source decides it.
    """

    custom_keys: dict = field(default_factory=dict)
    bias_lr_mult: float | None = None
    bias_decay_mult: float | None = None
    norm_decay_mult: float | None = None
    dwconv_decay_mult: float | None = None
    flat_decay_mult: float | None = None
    dcn_offset_lr_mult: float | None = None
    dcn_lr_mult: float | None = None
    layer_decay_rate: float | None = None
    min_scale: float = 0.0
    num_layers: int | None = None
    decay_type: str = 'layer_wise'
    depth_source: str = 'auto'
    depth_rules: list = field(default_factory=list)
    backbone: list | None = None
    model_hints: bool = True
    freeze: list = field(default_factory=list)
    keep_trainable: list = field(default_factory=list)

    @property
    def layer_decay(self) -> bool:
        """Whether depths must be worked out at all."""
        return self.layer_decay_rate is not None

    @property
    def stage_wise(self) -> bool:
        """One layer id per stage of the backbone instead of per block."""
        return self.decay_type == 'stage_wise'


def _check_rate(name: str, value: Any) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not 0 < value <= 1):
        raise ValueError(f'paramwise_cfg.{name} must be a number in (0, 1] '
                         f'(the lr ratio between neighbouring layers), got '
                         f'{value!r}')
    return float(value)


def parse_paramwise_cfg(cfg: dict | None,
                        base_wd: float | None) -> ParamwiseCfg:
    """Check a user's ``paramwise_cfg`` and normalise its spellings.

    Args:
        cfg (dict, optional): The ``paramwise_cfg`` of the optim wrapper.
        base_wd (float, optional): The optimizer's ``weight_decay``.

    Returns:
        ParamwiseCfg: The checked settings.

    Raises:
        ValueError / TypeError: naming the key, the value and what is allowed.
    """
    cfg = dict(cfg or {})
    for key in cfg:
        if key not in KNOWN_KEYS:
            raise ValueError(
                f'unknown paramwise_cfg key {key!r}{nearest(key, KNOWN_KEYS)}'
                f'; accepted keys: {", ".join(KNOWN_KEYS)}')
    out = ParamwiseCfg()
    custom_keys = check_custom_keys(cfg.pop('custom_keys', {}) or {})
    out.custom_keys = custom_keys
    for key in ('bias_lr_mult', 'dcn_offset_lr_mult', 'dcn_lr_mult',
                *DECAY_MULT_KEYS):
        if key in cfg:
            setattr(out, key, check_multiplier(key, cfg.pop(key)))
    # shared parameters are always deduped
    check_bool('bypass_duplicate', cfg.pop('bypass_duplicate', False))

    if 'layer_decay_rate' in cfg and 'decay_rate' in cfg:
        raise ValueError('paramwise_cfg has both layer_decay_rate and '
                         'decay_rate; they mean the same, keep one')
    for key in ('layer_decay_rate', 'decay_rate'):
        if key in cfg:
            out.layer_decay_rate = _check_rate(key, cfg.pop(key))
    if 'layer_decay_min_scale' in cfg:
        value = cfg.pop('layer_decay_min_scale')
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError('paramwise_cfg.layer_decay_min_scale must be in '
                             f'[0, 1], got {value!r}')
        out.min_scale = float(value)
    has_decay_type = 'decay_type' in cfg
    decay_type = cfg.pop('decay_type', 'layer_wise')
    if decay_type not in DECAY_TYPES:
        raise ValueError(f'paramwise_cfg.decay_type must be one of '
                         f'{DECAY_TYPES}, got {decay_type!r}'
                         f'{nearest(str(decay_type), DECAY_TYPES)}')
    out.decay_type = decay_type
    if 'num_layers' in cfg:
        value = cfg.pop('num_layers')
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError('paramwise_cfg.num_layers (the number of blocks, '
                             f'as in mmseg/mmpose) must be a positive int, '
                             f'got {value!r}')
        out.num_layers = value + 2  # stem below the blocks, head above
        # mmseg, mmdet and mmpose never decay 1-D parameters and biases.
        out.flat_decay_mult = (0.0 if out.flat_decay_mult is None else
                               out.flat_decay_mult)
        out.bias_decay_mult = (0.0 if out.bias_decay_mult is None else
                               out.bias_decay_mult)

    source = cfg.pop('depth_source', 'auto')
    if source not in DEPTH_SOURCES:
        raise ValueError(f'paramwise_cfg.depth_source must be one of '
                         f'{DEPTH_SOURCES}, got {source!r}'
                         f'{nearest(str(source), DEPTH_SOURCES)}')
    out.depth_source = source
    rules = cfg.pop('depth_rules', [])
    rules = list(rules.items()) if isinstance(rules, dict) else list(rules)
    for rule in rules:
        if (not isinstance(rule, (tuple, list)) or len(rule) != 2
                or not isinstance(rule[0], str)
                or not isinstance(rule[1], int) or rule[1] < 0):
            raise ValueError('paramwise_cfg.depth_rules must be (regex, '
                             f'depth >= 0) pairs, got {rule!r}')
    out.depth_rules = [(pattern, depth) for pattern, depth in rules]
    if source == 'rules' and not rules:
        raise ValueError("depth_source='rules' needs paramwise_cfg."
                         'depth_rules, e.g. [(r"^backbone\\.blocks\\.(\\d+)'
                         '", 1), ...]')
    backbone = cfg.pop('backbone', None)
    out.backbone = [backbone] if isinstance(backbone, str) else backbone
    out.model_hints = check_bool('model_hints', cfg.pop('model_hints', True))
    out.freeze = check_paths('freeze', cfg.pop('freeze', []))
    out.freeze += [
        f'levels.{i}' for i in check_levels(cfg.pop('freeze_backbone', []))
    ]
    out.keep_trainable = check_paths('keep_trainable',
                                     cfg.pop('keep_trainable', []))
    if out.keep_trainable and not out.freeze:
        raise ValueError('paramwise_cfg.keep_trainable exempts parameters '
                         'from freeze, but freeze (or freeze_backbone) is '
                         'empty; drop it or add freeze=[...]')
    assert not cfg, cfg  # every known key is consumed above

    if base_wd is None:
        wanted = [k for k in DECAY_MULT_KEYS
                  if getattr(out, k) is not None] + [
                      f'custom_keys[{k!r}].decay_mult'
                      for k, v in custom_keys.items() if 'decay_mult' in v
                  ]
        if wanted:
            raise ValueError(
                f'{wanted[0]} multiplies the optimizer\'s weight_decay, but '
                'optim_wrapper.optimizer has no weight_decay; add one, e.g. '
                'optimizer=dict(..., weight_decay=0.05)')
    if out.layer_decay_rate is None and out.num_layers is not None:
        raise ValueError('paramwise_cfg.num_layers is given but no '
                         'layer_decay_rate (or decay_rate)')
    if out.layer_decay_rate is None and has_decay_type:
        raise ValueError(f'paramwise_cfg.decay_type={decay_type!r} is given '
                         'but no decay_rate (or layer_decay_rate)')
    if out.min_scale and out.layer_decay_rate is None:
        raise ValueError('paramwise_cfg.layer_decay_min_scale needs '
                         'layer_decay_rate')
    return out
