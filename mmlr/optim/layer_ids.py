"""Which layer each parameter belongs to, for layer-wise LR decay.

A layer id ``d`` out of ``n`` layers gives the parameter the lr scale
``rate ** (n - 1 - d)``: id 0 is the stem (embeddings, tokens), the blocks
follow in order and id ``n - 1`` (head, neck, decoder) keeps the full lr.

The ids come from the first source that applies (or the one the config
names in ``paramwise_cfg.depth_source``):

1. ``rules``: the config's ``depth_rules``, ``[(regex, depth), ...]``; the
   first regex found in a parameter's name decides. Names no rule matches go
   to the top and are reported.
2. ``mmseg``: with ``num_layers`` in the config and a backbone mmseg's and
   mmdet's ``LearningRateDecayOptimizerConstructor`` know (class name with
   ``ConvNeXt``, ``BEiT`` or ``MAE``, in their layout), those
   constructors' own tables, for ``decay_type`` ``'layer_wise'`` and
   ``'stage_wise'``, with the config's ``num_layers``.
3. ``get_layer_depth``: the model's or its backbone's
   ``get_layer_depth(name) -> (layer_id, num_layers)`` (mmpretrain).
4. ``lr_decay_keywords``: the model's or its backbone's
   ``lr_decay_keywords(rate) -> {substring: lr ratio}`` (InternVL).
5. ``group_matcher``: timm's ``group_matcher()``, grouped by timm's own
   ``group_parameters``, so ids equal timm's ``param_groups_layer_decay``.
6. ``trunk``: found in the module tree (see :func:`find_trunk`).

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


# Names mmseg's and mmdet's tables send to the stem, compared in full.
MMSEG_TOKENS = ('cls_token', 'mask_token', 'pos_embed')


def mmseg_table(module: nn.Module) -> str | None:
    """Which of mmseg's/mmdet's layer-id tables fits a backbone, if any.

    Their ``LearningRateDecayOptimizerConstructor`` picks the table by the
    backbone's class name: ``'ConvNeXt'`` in it gives the ConvNeXt tables,
    ``'BEiT'`` or ``'MAE'`` the ViT table (mmseg only). The tables parse
    mmpretrain's and mmseg's attribute names, so the layout is checked too:
    timm's ConvNeXt (``stem``, ``stages.i.blocks.j``) is also called
    ``ConvNeXt``, and the tables would put its stem at the top.

    Returns:
        str | None: ``'convnext'``, ``'vit'`` or None.
    """
    cls = type(module).__name__
    children = dict(module.named_children())
    stages = children.get('stages')
    if ('ConvNeXt' in cls and 'downsample_layers' in children
            and isinstance(stages, nn.Module) and len(list(
                stages.children())) == 4):
        return 'convnext'
    if ('BEiT' in cls or 'MAE' in cls) and 'layers' in children:
        return 'vit'
    return None


def _mmseg_convnext_layer_id(rel: str, blocks: int) -> int:
    # mmseg get_layer_id_for_convnext(name, max_layer_id=num_layers):
    # stage 2 is bucketed by 3 blocks, stage 3 shares the last block id.
    parts = rel.split('.')
    if rel in MMSEG_TOKENS:
        return 0
    if parts[0] == 'downsample_layers':
        return (0, 2, 3, blocks)[int(parts[1])]
    if parts[0] == 'stages':
        stage, block = int(parts[1]), int(parts[2])
        return (1, 2, 3 + block // 3, blocks)[stage]
    return blocks + 1


def _mmseg_convnext_stage_id(rel: str, total: int) -> int:
    # mmseg get_stage_id_for_convnext(name, max_stage_id=num_layers + 2)
    parts = rel.split('.')
    if rel in MMSEG_TOKENS or parts[0] == 'downsample_layers':
        return 0
    if parts[0] == 'stages':
        return int(parts[1]) + 1
    return total - 1


def _mmseg_vit_layer_id(rel: str, total: int) -> int:
    # mmseg get_layer_id_for_vit(name, max_layer_id=num_layers + 2)
    parts = rel.split('.')
    if rel in MMSEG_TOKENS or rel.startswith('patch_embed'):
        return 0
    if parts[0] == 'layers':
        return int(parts[1]) + 1
    return total - 1


def _from_mmseg(names: list, trunks: list, cfg: ParamwiseCfg) -> dict:
    total = cfg.num_layers
    ids = {}
    for path, module in trunks:
        table = mmseg_table(module)
        for name in names:
            rel = _relative(name, path)
            if rel is None or name in ids:
                continue
            if table == 'vit':
                layer_id = _mmseg_vit_layer_id(rel, total)
            elif cfg.stage_wise:
                layer_id = _mmseg_convnext_stage_id(rel, total)
            else:
                layer_id = _mmseg_convnext_layer_id(rel, total - 2)
            ids[name] = (layer_id, total)
        highest = max(((d, n) for n, (d, _) in ids.items()), default=None)
        if highest is not None and highest[0] >= total:
            # mmseg would scale these lrs above the base lr without a word.
            raise ValueError(
                f'paramwise_cfg.num_layers={total - 2} is too small for '
                f'{type(module).__name__}: mmseg\'s {table} table puts '
                f'{highest[1]!r} at layer id {highest[0]}, above the top '
                f'id {total - 1}, which would scale its lr above the base '
                f'lr; use num_layers >= {highest[0] - 1}')
    # Outside the backbone (heads, necks): the top, as in mmseg.
    ids.update({n: (total - 1, total) for n in names if n not in ids})
    return ids


def _staged(trunks: list) -> bool:
    """Whether some trunk is made of stages of several blocks."""
    return any(
        blocks != [stage] for _, module in trunks
        for stage, blocks in find_trunk(module))


SOURCES = ('rules', 'mmseg', 'get_layer_depth', 'lr_decay_keywords',
           'group_matcher', 'trunk')
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
    trunks = backbones(model, cfg.backbone)
    tables = {mmseg_table(module) for _, module in trunks}
    offered = {
        'rules': bool(cfg.depth_rules),
        'mmseg': cfg.num_layers is not None and None not in tables
        and (not cfg.stage_wise or tables == {'convnext'}),
        'get_layer_depth': cfg.model_hints
        and _owner(model, trunks, 'get_layer_depth') is not None,
        'lr_decay_keywords': cfg.model_hints
        and _owner(model, trunks, 'lr_decay_keywords') is not None,
        'group_matcher': cfg.model_hints
        and _owner(model, trunks, 'group_matcher') is not None,
        'trunk': not cfg.stage_wise or _staged(trunks),
    }
    source = cfg.depth_source
    if cfg.stage_wise:
        source = _stage_source(trunks, source, offered, cfg)
    elif source == 'auto':
        source = next(s for s in SOURCES if offered[s])
    elif not offered[source]:
        hint = (' (model_hints=False switches model methods off)'
                if not cfg.model_hints else '')
        if source == 'mmseg':
            hint = (' (it needs num_layers and a backbone whose class name '
                    'has ConvNeXt, BEiT or MAE, in mmpretrain\'s or '
                    'mmseg\'s layout)')
        raise ValueError(
            f"paramwise_cfg.depth_source={source!r}, but neither "
            f'{type(model).__name__} nor its backbone offers it{hint}; '
            f'available here: {[s for s in SOURCES if offered[s]]}')
    unplaced = []
    if source == 'rules':
        ids, unplaced = _from_rules(names, cfg.depth_rules, cfg.num_layers)
    elif source == 'mmseg':
        ids = _from_mmseg(names, trunks, cfg)
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


def _stage_source(trunks: list, source: str, offered: dict,
                  cfg: ParamwiseCfg) -> str:
    """The source for ``decay_type='stage_wise'``, or a clear refusal.

    Only ``mmseg`` (ConvNeXt) and ``trunk`` (stages of blocks) know stages;
    handing stage_wise to another source would quietly give layer-wise ids.
    """
    if source == 'auto':
        if cfg.depth_rules:
            raise ValueError(
                "paramwise_cfg.decay_type='stage_wise' and depth_rules "
                'both decide layer ids; keep one')
        source = next((s for s in STAGE_SOURCES if offered[s]), None)
    elif source not in STAGE_SOURCES:
        raise ValueError(
            f"paramwise_cfg.decay_type='stage_wise' needs stages, which "
            f'depth_source={source!r} does not give (it gives its own ids); '
            f'depth sources that honour stage_wise: {STAGE_SOURCES}, or use '
            "decay_type='layer_wise'")
    if source is None or not offered[source]:
        names = [type(m).__name__ for _, m in trunks]
        raise ValueError(
            "paramwise_cfg.decay_type='stage_wise' needs a backbone made of "
            'stages of blocks (mmseg and mmdet accept it for ConvNeXt only), '
            f'but {", ".join(names)} '
            f'{"has" if len(names) == 1 else "have"} a flat run of blocks '
            f'(or none); accepted decay_type here: \'layer_wise\' '
            '(or \'layer_wise_vit\')')
    return source


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
