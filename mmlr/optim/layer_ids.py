"""Which layer each parameter belongs to, for layer-wise LR decay.

A layer id ``d`` out of ``n`` layers gives the parameter the lr scale
``rate ** (n - 1 - d)``: id 0 is the stem (embeddings, tokens), the blocks
follow in order and id ``n - 1`` (head, neck, decoder) keeps the full lr.

Every depth source is a function ``(model, names, cfg) -> LayerDepths |
None`` (None: it does not apply to this model). :data:`SOURCES` lists them
in the order ``depth_source='auto'`` tries them; ``depth_source=<name>``
takes one:

1. ``rules``: the config's ``depth_rules``, ``[(regex, depth), ...]``; the
   first regex found in a parameter's name decides. Names no rule matches go
   to the top and are reported.
2. ``mmseg``: with ``num_layers`` in the config and a backbone mmseg's and
   mmdet's ``LearningRateDecayOptimizerConstructor`` know, those
   constructors' own tables (:mod:`mmlr.optim.mmseg_layer_ids`).
3. ``get_layer_depth``: the model's or its backbone's
   ``get_layer_depth(name) -> (layer_id, num_layers)`` (mmpretrain).
4. ``lr_decay_keywords``: the model's or its backbone's
   ``lr_decay_keywords(rate) -> {substring: lr ratio}`` (InternVL).
5. ``group_matcher``: timm's ``group_matcher()``, grouped by timm's own
   ``group_parameters``, so ids equal timm's ``param_groups_layer_decay``.
6. ``trunk``: the run of repeated blocks found in the module tree
   (:mod:`mmlr.optim.trunk`); it always applies, so ``'auto'`` ends there.

Asking the model first and parsing its structure last follows timm: the
model knows its layout, a name parser only guesses it. ``decay_type=
'stage_wise'`` needs stages, which only ``mmseg`` (ConvNeXt) and ``trunk``
(a trunk made of stages of blocks) know; any other source, or a trunk that
is a flat run of blocks (ViT, BEiT), is refused rather than giving
layer-wise ids.
"""
import inspect
import math
import re

import torch.nn as nn

from .layer_depths import DepthSource, LayerDepths, backbones
from .mmseg_layer_ids import from_mmseg
from .param_names import relative_name, strip_wrappers
from .paramwise_cfg import ParamwiseCfg
from .trunk import from_trunk


def from_rules(model: nn.Module, names: list,
               cfg: ParamwiseCfg) -> LayerDepths | None:
    """Ids from the config's ``depth_rules``: the first regex found in a
    name decides; names no rule matches are unplaced, at the top."""
    if not cfg.depth_rules:
        return None
    compiled = [(re.compile(pattern), depth)
                for pattern, depth in cfg.depth_rules]
    num_layers = cfg.num_layers or max(d for _, d in cfg.depth_rules) + 2
    ids, unplaced = {}, []
    for name in names:
        depth = next((d for regex, d in compiled if regex.search(name)), None)
        if depth is None:
            unplaced.append(name)
            depth = num_layers - 1
        ids[name] = (depth, num_layers)
    return LayerDepths('rules', ids, unplaced)


def _owner(model: nn.Module, cfg: ParamwiseCfg, method: str):
    """``(path, module)`` of the model, or else the first backbone, that
    defines ``method``; None when none does or model hints are off."""
    if not cfg.model_hints:
        return None
    if callable(getattr(model, method, None)):
        return '', model
    for path, module in backbones(model, cfg.backbone):
        if callable(getattr(module, method, None)):
            return path, module
    return None


def from_get_layer_depth(model: nn.Module, names: list,
                         cfg: ParamwiseCfg) -> LayerDepths | None:
    """Ids from ``get_layer_depth(name) -> (layer_id, num_layers)``
    (mmpretrain); names outside its module go to the top."""
    found = _owner(model, cfg, 'get_layer_depth')
    if found is None:
        return None
    path, owner = found
    fn = owner.get_layer_depth
    if path and 'prefix' in inspect.signature(fn).parameters:
        # mmpretrain backbones: names outside the prefix go to the top.
        ids = {n: tuple(fn(n, prefix=path + '.')) for n in names}
        return LayerDepths('get_layer_depth', ids)
    ids, outside = {}, []
    for name in names:
        rel = relative_name(name, path)
        if rel is None:
            outside.append(name)
        else:
            ids[name] = tuple(fn(rel))
    num_layers = max((n for _, n in ids.values()), default=1)
    ids.update({n: (num_layers - 1, num_layers) for n in outside})
    return LayerDepths('get_layer_depth', ids)


def from_keywords(model: nn.Module, names: list,
                  cfg: ParamwiseCfg) -> LayerDepths | None:
    """Ids from ``lr_decay_keywords(rate) -> {substring: lr ratio}``
    (InternVL): the first keyword (in dict order) found in a name."""
    found = _owner(model, cfg, 'lr_decay_keywords')
    if found is None:
        return None
    path, owner = found
    # Probing with rate 1/2 turns every ratio into an exact power of two, so
    # the exponent (layers below the top) is read back without rounding.
    keywords = owner.lr_decay_keywords(0.5)
    exponents = {}
    for key, ratio in keywords.items():
        exp = -math.log2(ratio) if ratio > 0 else -1.0
        if exp < 0 or exp != round(exp):
            raise ValueError(
                f'{type(owner).__name__}.lr_decay_keywords(0.5) gave '
                f'{ratio!r} for {key!r}; expected 0.5 ** k for an integer '
                'k >= 0')
        exponents[key] = int(exp)
    top = max(exponents.values(), default=0)
    ids = {}
    for name in names:
        rel = relative_name(name, path)
        exp = next((e for k, e in exponents.items()
                    if rel is not None and k in rel), 0)
        ids[name] = (top - exp, top + 1)
    return LayerDepths('lr_decay_keywords', ids)


def from_group_matcher(model: nn.Module, names: list,
                       cfg: ParamwiseCfg) -> LayerDepths | None:
    """Ids from timm's ``group_matcher()``, as timm's
    ``param_groups_layer_decay`` numbers them."""
    found = _owner(model, cfg, 'group_matcher')
    if found is None:
        return None
    path, owner = found
    try:
        from timm.models._manipulate import group_with_matcher
    except ImportError as error:  # group_matcher() is timm's convention
        raise ImportError('depth from group_matcher() needs timm') from error
    # timm's group_parameters, on names without wrapper levels (FSDP's,
    # checkpointing's), which the matcher's patterns do not expect.
    layer_map = group_with_matcher(
        ((strip_wrappers(n), p) for n, p in owner.named_parameters()),
        owner.group_matcher(coarse=False), reverse=True)
    num_layers = max(layer_map.values()) + 1
    ids = {}
    for name in names:
        rel = relative_name(name, path)
        # timm sends names its matcher does not know to the top layer.
        ids[name] = (layer_map.get(rel, num_layers - 1), num_layers)
    return LayerDepths('group_matcher', ids)


# The depth sources, in the order depth_source='auto' tries them.
SOURCES: dict[str, DepthSource] = {
    'rules': from_rules,
    'mmseg': from_mmseg,
    'get_layer_depth': from_get_layer_depth,
    'lr_decay_keywords': from_keywords,
    'group_matcher': from_group_matcher,
    'trunk': from_trunk,
}
# The sources that know stages, for decay_type='stage_wise'.
STAGE_SOURCES = ('mmseg', 'trunk')


def layer_depths(model: nn.Module, names: list,
                 cfg: ParamwiseCfg) -> LayerDepths:
    """Give every parameter name a ``(layer_id, num_layers)``.

    Args:
        model (nn.Module): The unwrapped model.
        names (list[str]): Parameter names of ``model`` (frozen included, so
            freezing a block does not shift the others' depths).
        cfg (ParamwiseCfg): The checked ``paramwise_cfg``.

    Returns:
        LayerDepths: ids per name, the source used and unplaced names.

    Raises:
        ValueError: The requested source is not offered by the model, or a
            source returned an id outside ``[0, num_layers)``.
    """
    if not cfg.layer_decay:
        return LayerDepths('none', {n: (0, 1) for n in names})
    if cfg.stage_wise:
        candidates = _stage_wise_sources(cfg)
    elif cfg.depth_source == 'auto':
        candidates = tuple(SOURCES)
    else:
        candidates = (cfg.depth_source, )
    for source in candidates:
        depths = SOURCES[source](model, names, cfg)
        if depths is not None:
            _check_range(depths, cfg.num_layers)
            return depths
    raise _not_offered(model, names, cfg)


def _not_offered(model: nn.Module, names: list,
                 cfg: ParamwiseCfg) -> ValueError:
    """The error when the source the config asks for does not apply."""
    if cfg.stage_wise:
        trunks = [type(m).__name__ for _, m in backbones(model, cfg.backbone)]
        return ValueError(
            "paramwise_cfg.decay_type='stage_wise' needs a backbone made of "
            'stages of blocks (mmseg and mmdet accept it for ConvNeXt only), '
            f'but {", ".join(trunks)} '
            f'{"has" if len(trunks) == 1 else "have"} a flat run of blocks '
            f'(or none); accepted decay_type here: \'layer_wise\' '
            '(or \'layer_wise_vit\')')
    source = cfg.depth_source
    hint = (' (model_hints=False switches model methods off)'
            if not cfg.model_hints else '')
    if source == 'mmseg':
        hint = (' (it needs num_layers and a backbone whose class name '
                'has ConvNeXt, BEiT or MAE, in mmpretrain\'s or '
                'mmseg\'s layout)')
    available = [
        name for name, from_source in SOURCES.items()
        if from_source(model, names, cfg) is not None
    ]
    return ValueError(
        f"paramwise_cfg.depth_source={source!r}, but neither "
        f'{type(model).__name__} nor its backbone offers it{hint}; '
        f'available here: {available}')


def _stage_wise_sources(cfg: ParamwiseCfg) -> tuple:
    """The sources to try for ``decay_type='stage_wise'``, or a refusal.

    Only ``mmseg`` (ConvNeXt) and ``trunk`` (stages of blocks) know stages;
    handing stage_wise to another source would quietly give layer-wise ids.
    """
    source = cfg.depth_source
    if source == 'auto':
        if cfg.depth_rules:
            raise ValueError(
                "paramwise_cfg.decay_type='stage_wise' and depth_rules "
                'both decide layer ids; keep one')
        return STAGE_SOURCES
    if source not in STAGE_SOURCES:
        raise ValueError(
            f"paramwise_cfg.decay_type='stage_wise' needs stages, which "
            f'depth_source={source!r} does not give (it gives its own ids); '
            f'depth sources that honour stage_wise: {STAGE_SOURCES}, or use '
            "decay_type='layer_wise'")
    return (source, )


def _check_range(depths: LayerDepths, num_layers: int | None) -> None:
    source = depths.source
    for name, (layer_id, total) in depths.ids.items():
        if num_layers is not None and total != num_layers:
            raise ValueError(
                f'paramwise_cfg.num_layers={num_layers - 2} means '
                f'{num_layers} layer ids (blocks + stem + top), but the '
                f"depth source {source!r} gives {total} (for {name!r})")
        if not 0 <= layer_id < total:
            raise ValueError(
                f'depth source {source!r} put {name!r} at layer id '
                f'{layer_id}, outside [0, {total}) (num_layers={total}); '
                'an id above the top would scale its lr above base_lr')
