"""Layer ids from mmseg's and mmdet's ``LearningRateDecayOptimizerConstructor``
tables, so their configs (``decay_rate``, ``decay_type``, ``num_layers``)
give the lrs they give there.
"""
import torch.nn as nn

from .layer_depths import LayerDepths, backbones
from .param_names import relative_name
from .paramwise_cfg import ParamwiseCfg

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


def _convnext_layer_id(rel: str, blocks: int) -> int:
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


def _convnext_stage_id(rel: str, total: int) -> int:
    # mmseg get_stage_id_for_convnext(name, max_stage_id=num_layers + 2)
    parts = rel.split('.')
    if rel in MMSEG_TOKENS or parts[0] == 'downsample_layers':
        return 0
    if parts[0] == 'stages':
        return int(parts[1]) + 1
    return total - 1


def _vit_layer_id(rel: str, total: int) -> int:
    # mmseg get_layer_id_for_vit(name, max_layer_id=num_layers + 2)
    parts = rel.split('.')
    if rel in MMSEG_TOKENS or rel.startswith('patch_embed'):
        return 0
    if parts[0] == 'layers':
        return int(parts[1]) + 1
    return total - 1


def from_mmseg(model: nn.Module, names: list,
               cfg: ParamwiseCfg) -> LayerDepths | None:
    """Ids from the table mmseg/mmdet would use for each backbone.

    None unless the config has ``num_layers`` and every backbone is one the
    tables know; for ``decay_type='stage_wise'`` only the ConvNeXt table
    has stages.
    """
    trunks = backbones(model, cfg.backbone)
    tables = [mmseg_table(module) for _, module in trunks]
    if cfg.num_layers is None or None in tables or (
            cfg.stage_wise and set(tables) != {'convnext'}):
        return None
    total = cfg.num_layers
    ids, details = {}, []
    for (path, module), table in zip(trunks, tables):
        for name in names:
            rel = relative_name(name, path)
            if rel is None or name in ids:
                continue
            if table == 'vit':
                layer_id = _vit_layer_id(rel, total)
            elif cfg.stage_wise:
                layer_id = _convnext_stage_id(rel, total)
            else:
                layer_id = _convnext_layer_id(rel, total - 2)
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
        kind = 'stage' if cfg.stage_wise and table == 'convnext' else 'layer'
        details.append(f'{table} {kind}-id table for '
                       f'{path or type(module).__name__}')
    # Outside the backbone (heads, necks): the top, as in mmseg.
    ids.update({n: (total - 1, total) for n in names if n not in ids})
    return LayerDepths('mmseg', ids, detail='; '.join(details))
