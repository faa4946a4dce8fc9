"""Layer ids from the trunk found in the module tree, for models that say
nothing about their layers.

The trunk is the run of repeated blocks: ViT ``blocks``, mmpretrain
``layers``, BERT ``encoder.layer``; for Swin (``layers.i.blocks``), ConvNeXt
(``stages.i.blocks``) and ResNet (``layer1..4``) a run of stages, each
holding a run of blocks. Its blocks get ids 1, 2, ... in order
(``decay_type='stage_wise'``: one id per stage), what is registered before
it the stem id 0 and what comes after (neck, head) the top id.
"""
from dataclasses import dataclass

import torch.nn as nn

from .layer_depths import LayerDepths, backbones
from .param_names import join_path, relative_name
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
class Trunk:
    """A run of repeated blocks, grouped in stages.

    Attributes:
        path (str): The module whose children form the run.
        stages (list[tuple[str, list[str]]]): ``(stage path, block paths)``
            per child of the run; a child without blocks of its own (a ViT
            block) is a stage of one block, itself.
        weights (int): Number of elements under ``path``, to break ties.
    """

    path: str
    stages: list
    weights: int

    @property
    def blocks(self) -> list:
        return [block for _, blocks in self.stages for block in blocks]

    @property
    def staged(self) -> bool:
        """Whether some stage holds blocks (Swin, ConvNeXt), not a flat run
        of blocks (ViT)."""
        return any(blocks != [stage] for stage, blocks in self.stages)

    def describe(self, prefix: str = '') -> str:
        """``'backbone.blocks, 12 blocks'``, ``'backbone.layers, 24 blocks
        in 4 stages'`` or, for a run directly in the backbone (ResNet),
        ``'backbone.layer1..layer4, 16 blocks in 4 stages'``; ``prefix`` is
        the backbone's path."""
        where = self.path or '..'.join(
            (self.stages[0][0], self.stages[-1][0]))
        where = join_path(prefix, where)
        count = f'{len(self.blocks)} blocks'
        if self.staged:
            count += f' in {len(self.stages)} stages'
        return f'{where}, {count}'


def _kind(module: nn.Module):
    """The class; for plain containers also what they contain, so timm
    ConvNeXt's ``stem`` and ``stages`` (both ``Sequential``), or mmpretrain
    ConvNeXt's ``downsample_layers`` and ``stages``, differ."""
    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        return type(module), frozenset(_kind(c) for c in module.children())
    return type(module)


def _run(module: nn.Module) -> list:
    """The longest run of consecutive same-kind children of ``module`` that
    have parameterised children of their own: ``[(name, child), ...]``,
    or ``[]`` when no such run has two children."""
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


def find_trunk(module: nn.Module, path: str = '') -> Trunk | None:
    """The trunk in ``module`` or below it: the run with the most blocks.

    Every module is a candidate whose run (see :func:`_run`) has two
    children or more. Each child of a run is a stage: its blocks are the
    blocks of the trunk found inside the child (Swin's ``layers.i`` holds
    ``blocks``), or the child itself when it holds none (ViT's
    ``blocks.i``). Among the candidates the one with the most blocks wins;
    ties (ConvNeXt's 4 downsample layers against 4 one-block stages) go to
    the one holding more weights, then to the first in ``named_modules``
    order (the module before its children, children in order).

    Args:
        module (nn.Module): Where to search.
        path (str): ``module``'s path, put in front of the paths found.

    Returns:
        Trunk | None: None when ``module`` has no repeated blocks.
    """
    children = dict(module.named_children())
    # The trunk inside each child, found first: a stage's blocks need them.
    inside = {
        name: find_trunk(child, join_path(path, name))
        for name, child in children.items()
    }
    here = None
    run = _run(module)
    if run:
        stages = []
        for name, _ in run:
            stage = join_path(path, name)
            inner = inside[name]
            stages.append((stage, inner.blocks if inner else [stage]))
        here = Trunk(path, stages,
                     sum(p.numel() for p in module.parameters()))
    candidates = [t for t in (here, *inside.values()) if t is not None]
    # max() keeps the first of equal keys: the module before its children.
    return max(candidates, key=lambda t: (len(t.blocks), t.weights),
               default=None)


def _inside(rel: str, paths) -> str | None:
    """The path in ``paths`` that ``rel`` (a parameter name) lies under."""
    parts = rel.split('.')
    for i in range(len(parts) - 1, 0, -1):
        prefix = '.'.join(parts[:i])
        if prefix in paths:
            return prefix
    return None


def _trunk_ids(names: list, path: str, trunk: Trunk,
               cfg: ParamwiseCfg) -> dict:
    """Ids of one backbone's parameters (``names``, under ``path``)."""
    block_depth = {}
    for s, (_, blocks) in enumerate(trunk.stages):
        for block in blocks:
            block_depth[block] = (s + 1 if cfg.stage_wise else
                                  len(block_depth) + 1)
    num_layers = cfg.num_layers or max(block_depth.values()) + 2
    stage_blocks = dict(trunk.stages)
    ids, seen_trunk, seen_block = {}, False, {}
    for name in names:  # registration order
        rel = relative_name(name, path)
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


def from_trunk(model: nn.Module, names: list,
               cfg: ParamwiseCfg) -> LayerDepths | None:
    """Ids from each backbone's trunk, each backbone over its own depth.

    A backbone without a trunk leaves its parameters unplaced (at the top);
    parameters outside every backbone (heads, necks) are at the top.
    ``decay_type='stage_wise'`` needs a trunk made of stages: None without
    one.
    """
    found = [(path, module, find_trunk(module))
             for path, module in backbones(model, cfg.backbone)]
    if cfg.stage_wise and not any(t and t.staged for *_, t in found):
        return None
    ids, unplaced, details = {}, [], []
    for path, module, trunk in found:
        mine = [n for n in names if relative_name(n, path) is not None]
        if trunk is None:
            unplaced += mine
            details.append(f'none in {path or type(module).__name__}')
        else:
            ids.update(_trunk_ids(mine, path, trunk, cfg))
            details.append(trunk.describe(path))
    # Outside every backbone (heads, necks) and trunk-less: the top, scale 1.
    top = max((n for _, n in ids.values()), default=cfg.num_layers or 1)
    ids.update({n: (top - 1, top) for n in names if n not in ids})
    return LayerDepths('trunk', ids, unplaced, '; '.join(details))
