"""The models and groupings the optimizer benchmarks compare, built once.

A *grouping* is the list of parameter groups one way of configuring a run
produces for a model, as plain dicts (``params``, ``lr``, ``weight_decay``):

- ``single``: every tensor in one group (no layer decay);
- ``mmlr``: :class:`LayerDecayOptimWrapperConstructor` with the MAE recipe
  (``layer_decay_rate``, ``flat_decay_mult=0.0``);
- ``timm``: timm's ``param_groups_layer_decay`` (lr = base lr * lr_scale);
- ``per_tensor``: mmengine's ``DefaultOptimWrapperConstructor`` with a
  ``paramwise_cfg``, which gives one group per tensor, as mmpretrain's and
  InternVL's layer-decay constructors do too.
"""
import torch
import torch.nn as nn

BASE_LR = 1e-3
WEIGHT_DECAY = 0.05
#: the timm models measured, and a tiny one for ``--quick``
MODELS = {
    'ViT-B/16': 'vit_base_patch16_224',
    'ViT-L/16': 'vit_large_patch16_224',
}
QUICK_MODEL = 'ViT-tiny-4'
#: the MAE fine-tuning decay rate of each model
MAE_RATE = {'ViT-B/16': 0.65, 'ViT-L/16': 0.75, QUICK_MODEL: 0.65}
GROUPINGS = ('single', 'mmlr', 'timm', 'per_tensor')


def build_vit(label: str, device: str = 'cpu') -> nn.Module:
    """A randomly initialised timm ViT (``pretrained=False``)."""
    import timm
    with torch.device(device):
        if label == QUICK_MODEL:
            from timm.models.vision_transformer import VisionTransformer
            return VisionTransformer(
                img_size=32, patch_size=8, embed_dim=32, depth=4,
                num_heads=2, num_classes=10)
        return timm.create_model(MODELS[label], pretrained=False)


def mae_paramwise_cfg(rate: float) -> dict:
    """mmpretrain's MAE fine-tuning recipe in mmlr's terms."""
    return dict(layer_decay_rate=rate, flat_decay_mult=0.0)


def _optim_cfg() -> dict:
    return dict(optimizer=dict(type='AdamW', lr=BASE_LR,
                               weight_decay=WEIGHT_DECAY))


def _plain(groups: list[dict]) -> list[dict]:
    return [
        dict(params=list(g['params']), lr=g['lr'],
             weight_decay=g['weight_decay']) for g in groups
    ]


def grouping(model: nn.Module, name: str, rate: float) -> list[dict]:
    """The parameter groups of ``name`` (one of :data:`GROUPINGS`)."""
    if name == 'single':
        return [dict(params=[p for p in model.parameters() if p.requires_grad],
                     lr=BASE_LR, weight_decay=WEIGHT_DECAY)]
    if name == 'mmlr':
        from mmlr.optim import LayerDecayOptimWrapperConstructor
        constructor = LayerDecayOptimWrapperConstructor(
            _optim_cfg(), mae_paramwise_cfg(rate))
        return _plain(constructor(model).optimizer.param_groups)
    if name == 'timm':
        from timm.optim import param_groups_layer_decay
        groups = param_groups_layer_decay(
            model, weight_decay=WEIGHT_DECAY, layer_decay=rate)
        for g in groups:
            g['lr'] = BASE_LR * g['lr_scale']
        return _plain(groups)
    if name == 'per_tensor':
        from mmengine.optim import DefaultOptimWrapperConstructor
        constructor = DefaultOptimWrapperConstructor(
            _optim_cfg(), dict(norm_decay_mult=0.0, flat_decay_mult=0.0))
        return _plain(constructor(model).optimizer.param_groups)
    raise ValueError(f'unknown grouping {name!r}; one of {GROUPINGS}')


def groupings(model: nn.Module, rate: float) -> dict[str, list[dict]]:
    """Every grouping of :data:`GROUPINGS` for ``model``."""
    return {name: grouping(model, name, rate) for name in GROUPINGS}
