"""Which layer each parameter belongs to, for layer-wise LR decay.

A layer id ``d`` out of ``n`` layers gives the parameter the lr scale
``rate ** (n - 1 - d)``: id 0 is the stem (embeddings, tokens), the blocks
follow in order and id ``n - 1`` (head, neck, decoder) keeps the full lr.

The ids come from the first source that applies (or the one the config
names in ``paramwise_cfg.depth_source``):

1. ``rules``: the config's ``depth_rules``, ``[(regex, depth), ...]``; the
   first regex found in a parameter's name decides. Names no rule matches go
   to the top and are reported.
2. ``get_layer_depth``: the model's or its backbone's
   ``get_layer_depth(name) -> (layer_id, num_layers)`` (mmpretrain).
3. ``lr_decay_keywords``: the model's or its backbone's
   ``lr_decay_keywords(rate) -> {substring: lr ratio}`` (InternVL).
4. ``group_matcher``: timm's ``group_matcher()``, grouped by timm's own
   ``group_parameters``, so ids equal timm's ``param_groups_layer_decay``.
5. ``trunk``: found in the module tree (see :func:`find_trunk`).

Asking the model first and parsing its structure last follows timm: the
model knows its layout, a name parser only guesses it.
"""
import inspect
import math
import re
from dataclasses import dataclass, field

import torch.nn as nn

from .paramwise_cfg import ParamwiseCfg

# Leaf or module names that are embeddings (or applied before the first
# block): always the stem, wherever the model registers them.
STEM_NAMES = frozenset({
    'patch_embed', 'pos_embed', 'cls_token', 'mask_token', 'reg_token',
    'register_tokens', 'dist_token', 'absolute_pos_embed', 'norm_pre',
    'pre_norm', 'ln_pre', 'pre_layrnorm', 'patch_embedding',
    'position_embedding', 'embeddings'
})


@dataclass
class LayerDepths:
    """Layer ids of every parameter name and where they came from.

    Attributes:
        source (str): The source that decided (``'none'`` without decay).
        ids (dict): ``name -> (layer_id, num_layers)``.
        unplaced (list[str]): Names no rule placed (they got the top id).
    """

    source: str
    ids: dict = field(default_factory=dict)
    unplaced: list = field(default_factory=list)


def backbones(model: nn.Module, paths: list | None) -> list:
    """``[(path, module), ...]`` of the trunks to decay.

    Without configured paths: the model's ``backbone`` child if it has one
    (the OpenMMLab layout), else the whole model.
    """
    if paths is None:
        child = getattr(model, 'backbone', None)
        return [('backbone', child)] if isinstance(child, nn.Module) else [
            ('', model)
        ]
    found = []
    for path in paths:
        try:
            found.append((path, model.get_submodule(path) if path else model))
        except AttributeError:
            children = [name for name, _ in model.named_children()]
            raise ValueError(
                f'paramwise_cfg.backbone {path!r} is not a submodule of '
                f'{type(model).__name__}; its children are {children}'
            ) from None
    return found


def _owner(model: nn.Module, trunks: list, method: str):
    """The model, or else the first backbone, that defines ``method``."""
    if callable(getattr(model, method, None)):
        return '', model
    for path, module in trunks:
        if callable(getattr(module, method, None)):
            return path, module
    return None


def _relative(name: str, path: str) -> str | None:
    if not path:
        return name
    return name[len(path) + 1:] if name.startswith(path + '.') else None


def _from_get_layer_depth(names, path, owner) -> dict:
    fn = owner.get_layer_depth
    if path and 'prefix' in inspect.signature(fn).parameters:
        # mmpretrain backbones: names outside the prefix go to the top.
        return {n: tuple(fn(n, prefix=path + '.')) for n in names}
    ids, outside = {}, []
    for name in names:
        rel = _relative(name, path)
        if rel is None:
            outside.append(name)
        else:
            ids[name] = tuple(fn(rel))
    num_layers = max((n for _, n in ids.values()), default=1)
    ids.update({n: (num_layers - 1, num_layers) for n in outside})
    return ids


def _from_keywords(names, path, owner) -> dict:
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
        rel = _relative(name, path)
        # InternVL: the first keyword (in dict order) contained in the name.
        exp = next((e for k, e in exponents.items()
                    if rel is not None and k in rel), 0)
        ids[name] = (top - exp, top + 1)
    return ids


def _from_group_matcher(names, path, owner) -> dict:
    try:
        from timm.models._manipulate import group_parameters
    except ImportError as error:  # group_matcher() is timm's convention
        raise ImportError('depth from group_matcher() needs timm') from error
    layer_map = group_parameters(
        owner, owner.group_matcher(coarse=False), reverse=True)
    num_layers = max(layer_map.values()) + 1
    ids = {}
    for name in names:
        rel = _relative(name, path)
        # timm sends names its matcher does not know to the top layer.
        ids[name] = (layer_map.get(rel, num_layers - 1), num_layers)
    return ids


def _from_rules(names, rules, num_layers) -> tuple[dict, list]:
    compiled = [(re.compile(pattern), depth) for pattern, depth in rules]
    num_layers = num_layers or max(d for _, d in rules) + 2
    ids, unplaced = {}, []
    for name in names:
        depth = next((d for regex, d in compiled if regex.search(name)), None)
        if depth is None:
            unplaced.append(name)
            depth = num_layers - 1
        ids[name] = (depth, num_layers)
    return ids, unplaced


def _kind(module: nn.Module):
    """The class; for plain containers also what they contain, so timm
    ConvNeXt's ``stem`` and ``stages`` (both ``Sequential``), or mmpretrain
    ConvNeXt's ``downsample_layers`` and ``stages``, differ."""
    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        return type(module), frozenset(_kind(c) for c in module.children())
    return type(module)


def _run(module: nn.Module) -> list:
    """The longest run of consecutive same-class composite children."""
    best, current = [], []
    for name, child in module.named_children():
        composite = any(
            any(True for _ in c.parameters()) for c in child.children())
        if composite and current and _kind(current[-1][1]) == _kind(child):
            current.append((name, child))
        else:
            current = [(name, child)] if composite else []
        if len(current) > len(best):
            best = list(current)
    return best if len(best) >= 2 else []


def _flat_blocks(path: str, module: nn.Module, memo: dict) -> list:
    """``[(stage_path, [block paths])]`` if ``module`` holds a run.

    A run of stages that each hold their own run of blocks (Swin, ConvNeXt,
    ResNet) is flattened: the stages' blocks become the trunk's blocks.
    """
    if path in memo:
        return memo[path]
    stages = []
    for name, child in _run(module):
        child_path = f'{path}.{name}' if path else name
        inner = _best_run(child_path, child, memo)
        stages.append((child_path, [b for _, blocks in inner for b in blocks]
                       if inner else [child_path]))
    memo[path] = stages
    return stages


def _best_run(path: str, module: nn.Module, memo: dict) -> list:
    """Stages of the container under ``module`` with the most blocks."""
    best, best_key = [], (1, 0)
    for sub_path, sub in module.named_modules(prefix=path):
        stages = _flat_blocks(sub_path, sub, memo)
        count = sum(len(blocks) for _, blocks in stages)
        # Ties (ConvNeXt's 4 downsample layers vs 4 one-block stages): the
        # trunk is the one holding more weights.
        if count < 2:
            continue
        key = (count, sum(p.numel() for p in sub.parameters()))
        if key > best_key:
            best, best_key = stages, key
    return best


def find_trunk(module: nn.Module) -> list:
    """The trunk of a backbone: its stages and their blocks, in order.

    The trunk is the container with the longest run of consecutive children
    of one class that have parameterised children of their own (ViT
    ``blocks``, mmpretrain ``layers``, BERT ``encoder.layer``). When those
    children are stages that each hold such a run (Swin ``layers.i.blocks``,
    ConvNeXt ``stages.i.blocks``, ResNet ``layer1..4``), the stages' blocks
    are taken in order. Paths are relative to ``module``.

    Returns:
        list[tuple[str, list[str]]]: ``(stage path, block paths)`` per stage
        (a plain trunk's blocks are one-block stages), or ``[]`` when the
        module has no repeated blocks.
    """
    return _best_run('', module, {})


def _inside(rel: str, paths) -> str | None:
    """The path in ``paths`` that ``rel`` (a parameter name) lies under."""
    parts = rel.split('.')
    for i in range(len(parts) - 1, 0, -1):
        prefix = '.'.join(parts[:i])
        if prefix in paths:
            return prefix
    return None


def _trunk_ids(names: list, path: str, module: nn.Module,
               cfg: ParamwiseCfg) -> dict | None:
    """Ids of one backbone's parameters from its trunk, or None."""
    stages = find_trunk(module)
    if not stages:
        return None
    block_depth = {}
    for s, (_, blocks) in enumerate(stages):
        for block in blocks:
            block_depth[block] = (s + 1 if cfg.stage_wise else
                                  len(block_depth) + 1)
    num_layers = cfg.num_layers or max(block_depth.values()) + 2
    stage_blocks = dict(stages)
    ids, seen_trunk, seen_block = {}, False, {}
    for name in names:  # registration order
        rel = _relative(name, path)
        block = _inside(rel, block_depth)
        stage = _inside(rel, stage_blocks)
        if block is not None:
            depth = block_depth[block]
            seen_block[stage] = block
        elif stage is not None:
            # A stage's own layers (downsample, norm) join the nearest
            # block: the stage's first before its blocks, else its last.
            depth = block_depth[seen_block.get(stage, stage_blocks[stage][0])]
        elif any(part in STEM_NAMES for part in rel.split('.')):
            depth = 0
        else:
            # Before the trunk: stem; after it: neck and head at the top.
            depth = num_layers - 1 if seen_trunk else 0
        seen_trunk = seen_trunk or block is not None or stage is not None
        ids[name] = (depth, num_layers)
    return ids


def _from_trunk(names: list, trunks: list, cfg: ParamwiseCfg) -> tuple:
    ids, unplaced = {}, []
    for path, module in trunks:
        mine = [n for n in names if _relative(n, path) is not None]
        found = _trunk_ids(mine, path, module, cfg)
        if found is None:
            unplaced += mine
        else:
            ids.update(found)
    # Outside every backbone (heads, necks) and trunk-less: the top, scale 1.
    top = max((n for _, n in ids.values()), default=cfg.num_layers or 1)
    ids.update({n: (top - 1, top) for n in names if n not in ids})
    return ids, unplaced


SOURCES = ('rules', 'get_layer_depth', 'lr_decay_keywords', 'group_matcher',
           'trunk')


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
    trunks = backbones(model, cfg.backbone)
    offered = {
        'rules': bool(cfg.depth_rules),
        'get_layer_depth': cfg.model_hints
        and _owner(model, trunks, 'get_layer_depth') is not None,
        'lr_decay_keywords': cfg.model_hints
        and _owner(model, trunks, 'lr_decay_keywords') is not None,
        'group_matcher': cfg.model_hints
        and _owner(model, trunks, 'group_matcher') is not None,
        'trunk': True,
    }
    source = cfg.depth_source
    if source == 'auto':
        source = next(s for s in SOURCES if offered[s])
    elif not offered[source]:
        hint = (' (model_hints=False switches model methods off)'
                if not cfg.model_hints else '')
        raise ValueError(
            f"paramwise_cfg.depth_source={source!r}, but neither "
            f'{type(model).__name__} nor its backbone offers it{hint}; '
            f'available here: {[s for s in SOURCES if offered[s]]}')
    unplaced = []
    if source == 'rules':
        ids, unplaced = _from_rules(names, cfg.depth_rules, cfg.num_layers)
    elif source == 'trunk':
        ids, unplaced = _from_trunk(names, trunks, cfg)
    else:
        path, owner = _owner(model, trunks, source)
        build = {
            'get_layer_depth': _from_get_layer_depth,
            'lr_decay_keywords': _from_keywords,
            'group_matcher': _from_group_matcher
        }[source]
        ids = build(names, path, owner)
    _check_range(ids, source, cfg.num_layers)
    return LayerDepths(source, ids, unplaced)


def _check_range(ids: dict, source: str, num_layers: int | None) -> None:
    for name, (layer_id, total) in ids.items():
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
