"""mmseg's and mmdet's layer-decay configs give the numbers of their own
``LearningRateDecayOptimizerConstructor``, on the real mmpretrain backbones
their configs build (``type='mmpretrain.ConvNeXt'``).

The reference below is mmseg 1.2.2's
``mmseg/engine/optimizers/layer_decay_optimizer_constructor.py`` written out
by hand (mmdet 3.3.0's is the same minus the ViT table); mmseg and mmdet
themselves cannot be imported here (both assert mmcv < 2.2.0). mmpretrain
is imported inside the tests: importing it registers mmcv's layers in
mmengine's root registries, which other test modules should not see at
collection.
"""
import pytest
import timm
import torch
import torch.nn as nn
from mmengine.registry import MODELS

from mmlr.optim import LayerDecayOptimWrapperConstructor

LR, WD = 1e-4, 0.05


def mmseg_layer_id_for_convnext(var_name: str, max_layer_id: int) -> int:
    """mmseg ``get_layer_id_for_convnext`` (max_layer_id = num_layers)."""
    if var_name in ('backbone.cls_token', 'backbone.mask_token',
                    'backbone.pos_embed'):
        return 0
    if var_name.startswith('backbone.downsample_layers'):
        stage_id = int(var_name.split('.')[2])
        return {0: 0, 1: 2, 2: 3, 3: max_layer_id}[stage_id]
    if var_name.startswith('backbone.stages'):
        stage_id = int(var_name.split('.')[2])
        block_id = int(var_name.split('.')[3])
        return {
            0: 1,
            1: 2,
            2: 3 + block_id // 3,
            3: max_layer_id
        }[stage_id]
    return max_layer_id + 1


def mmseg_stage_id_for_convnext(var_name: str, max_stage_id: int) -> int:
    """mmseg ``get_stage_id_for_convnext`` (max_stage_id = num_layers + 2)."""
    if var_name in ('backbone.cls_token', 'backbone.mask_token',
                    'backbone.pos_embed'):
        return 0
    if var_name.startswith('backbone.downsample_layers'):
        return 0
    if var_name.startswith('backbone.stages'):
        return int(var_name.split('.')[2]) + 1
    return max_stage_id - 1


def mmseg_layer_id_for_vit(var_name: str, max_layer_id: int) -> int:
    """mmseg ``get_layer_id_for_vit`` (max_layer_id = num_layers + 2)."""
    if var_name in ('backbone.cls_token', 'backbone.mask_token',
                    'backbone.pos_embed'):
        return 0
    if var_name.startswith('backbone.patch_embed'):
        return 0
    if var_name.startswith('backbone.layers'):
        return int(var_name.split('.')[2]) + 1
    return max_layer_id - 1


def mmseg_lr_and_wd(model: nn.Module, paramwise_cfg: dict) -> dict:
    """``LearningRateDecayOptimizerConstructor.add_params``: every trainable
    parameter's (lr, weight_decay)."""
    num_layers = paramwise_cfg['num_layers'] + 2
    decay_rate = paramwise_cfg['decay_rate']
    decay_type = paramwise_cfg.get('decay_type', 'layer_wise')
    backbone = type(model.backbone).__name__
    out = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # (their `name in ('pos_embed', 'cls_token')` never matches a full
        # name, so tokens keep the weight decay)
        no_decay = len(param.shape) == 1 or name.endswith('.bias')
        if 'layer_wise' in decay_type:
            if 'ConvNeXt' in backbone:
                layer_id = mmseg_layer_id_for_convnext(
                    name, paramwise_cfg['num_layers'])
            elif 'BEiT' in backbone or 'MAE' in backbone:
                layer_id = mmseg_layer_id_for_vit(name, num_layers)
            else:
                raise NotImplementedError()
        elif decay_type == 'stage_wise':
            if 'ConvNeXt' in backbone:
                layer_id = mmseg_stage_id_for_convnext(name, num_layers)
            else:
                raise NotImplementedError()
        scale = decay_rate**(num_layers - layer_id - 1)
        out[name] = (scale * LR, 0. if no_decay else WD)
    return out


class EncoderDecoder(nn.Module):
    """mmseg's segmentor layout: backbone, decode_head, auxiliary_head."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.decode_head = nn.Sequential(
            nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 19, 1))
        self.auxiliary_head = nn.Sequential(
            nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8))


def convnext(arch: str, out_indices: list) -> EncoderDecoder:
    # As mmseg's configs/_base_/models/upernet_convnext.py and mmdet's
    # convnext / rtmdet configs build it (their custom_imports).
    import mmpretrain.models  # noqa: F401
    return EncoderDecoder(
        MODELS.build(
            dict(
                type='mmpretrain.ConvNeXt',
                arch=arch,
                out_indices=out_indices,
                drop_path_rate=0.4,
                layer_scale_init_value=1.0,
                gap_before_final_norm=False)))


@pytest.fixture(scope='module')
def models() -> dict:
    # ConvNeXt-T: depths (3, 3, 9, 3); ConvNeXt-B: (3, 3, 27, 3).
    return {
        'tiny': convnext('tiny', [0, 1, 2, 3]),
        'base': convnext('base', [0, 1, 2, 3]),
    }


def build(model, paramwise_cfg):
    return LayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)),
        paramwise_cfg)(model)


def per_param(model, optim_wrapper) -> dict:
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: (g['lr'], g['weight_decay'])
        for g in optim_wrapper.optimizer.param_groups for p in g['params']
    }


def check(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    wrong = [
        name for name, (lr, wd) in expected.items()
        if actual[name][0] != pytest.approx(lr, rel=1e-12)
        or actual[name][1] != wd
    ]
    assert not wrong, (f'{len(wrong)} of {len(expected)} differ, e.g. '
                       f'{wrong[0]}: {actual[wrong[0]]} != '
                       f'{expected[wrong[0]]}')


# (arch, decay_rate, num_layers) per decay_type: the shipped configs, then
# what both constructors accept in no shipped config (a num_layers other
# than mmpretrain's own 6 / 12 for T / B; stage_wise on ConvNeXt-B with 6).
CASES = {
    # mmseg convnext-{tiny,base}_upernet
    'stage_wise': [('tiny', 0.9, 6), ('base', 0.9, 12), ('tiny', 0.9, 3),
                   ('base', 0.9, 6)],
    # mmdet mask-rcnn_convnext-t (0.95, 6), rtmdet_l_convnext_b (0.8, 12)
    'layer_wise': [('tiny', 0.95, 6), ('base', 0.8, 12), ('tiny', 0.9, 12),
                   ('base', 0.9, 10)],
    # what mmseg's BEiT constructor sets; a layer_wise for them
    'layer_wise_vit': [('base', 0.9, 12), ('tiny', 0.9, 12)],
    None: [('tiny', 0.9, 6), ('tiny', 0.9, 12)],  # layer_wise by default
}


@pytest.mark.parametrize('decay_type', list(CASES))
def test_mmpretrain_convnext_gets_mmseg_and_mmdet_numbers(models, decay_type):
    for arch, decay_rate, num_layers in CASES[decay_type]:
        paramwise_cfg = dict(decay_rate=decay_rate, num_layers=num_layers)
        if decay_type is not None:
            paramwise_cfg['decay_type'] = decay_type
        model = models[arch]
        check(per_param(model, build(model, paramwise_cfg)),
              mmseg_lr_and_wd(model, paramwise_cfg))


def test_convnext_b_upernet_stage_wise_worked_example(models):
    # mmseg convnext-base_upernet: lr 1e-4, decay_rate 0.9, stage_wise,
    # num_layers 12 -> 14 ids; stage s has id s + 1, so stage 3 (id 4) gets
    # 1e-4 * 0.9 ** (14 - 4 - 1) = 3.8742e-5 (not 0.9 ** 1 = 9e-5, what
    # mmpretrain's layer-wise get_layer_depth gives it); downsample layers
    # id 0: 0.9 ** 13; decode head id 13: the full lr.
    model = models['base']
    paramwise_cfg = dict(decay_rate=0.9, decay_type='stage_wise',
                         num_layers=12)
    constructor = LayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)),
        paramwise_cfg)
    _, plans, report = constructor.plan(model)
    assert report.source == 'mmseg'  # what the INFO table says
    lrs = per_param(model, constructor(model))
    for name, (lr, _) in lrs.items():
        if name.startswith('backbone.stages.3.'):
            assert lr == pytest.approx(3.8742e-5, abs=1e-9), name
        elif name.startswith('backbone.downsample_layers.'):
            assert lr == pytest.approx(1e-4 * 0.9**13), name
        elif name.startswith('decode_head.'):
            assert lr == pytest.approx(1e-4), name


def test_num_layers_that_would_raise_lrs_above_base_is_refused(models):
    # ConvNeXt-B's stage 2 has 27 blocks: mmseg puts its last one at id
    # 3 + 26 // 3 = 11, above the top id 7 of num_layers=6, so its lr would
    # be 0.9 ** -4 = 1.52 x the base lr. mmseg does that silently.
    with pytest.raises(ValueError, match=r'num_layers=6 is too small .*'
                       r'layer id 11.*num_layers >= 10'):
        build(models['base'], dict(decay_rate=0.9, decay_type='layer_wise',
                                   num_layers=6))


def beit_and_mae() -> list:
    from mmpretrain.models import BEiTViT, MAEViT
    return [
        EncoderDecoder(
            BEiTViT(arch='deit-tiny', img_size=32, patch_size=16,
                    use_rel_pos_bias=False, use_shared_rel_pos_bias=True)),
        EncoderDecoder(MAEViT(arch='deit-tiny', img_size=32, patch_size=16)),
    ]


@pytest.mark.parametrize('decay_type', ['layer_wise', 'layer_wise_vit'])
def test_beit_and_mae_get_mmseg_vit_numbers(decay_type):
    # mmseg's beit/mae upernet configs: num_layers=12 with the BEiT/MAE
    # table (12 blocks here); 14 checks a num_layers above the block count.
    for model in beit_and_mae():
        for num_layers in (12, 14):
            paramwise_cfg = dict(decay_rate=0.65, decay_type=decay_type,
                                 num_layers=num_layers)
            check(per_param(model, build(model, paramwise_cfg)),
                  mmseg_lr_and_wd(model, paramwise_cfg))


def test_stage_wise_on_a_flat_backbone_is_refused():
    # mmseg/mmdet raise NotImplementedError for stage_wise on anything but
    # ConvNeXt; a ViT's blocks are not stages, so stage_wise would quietly
    # be layer_wise.
    for model in beit_and_mae():
        with pytest.raises(ValueError,
                           match=r"decay_type='stage_wise' needs a backbone "
                           r"made of stages.*accepted decay_type here: "
                           r"'layer_wise'"):
            build(model, dict(decay_rate=0.9, decay_type='stage_wise',
                              num_layers=12))
    with torch.device('meta'):
        vit = timm.create_model('vit_tiny_patch16_224')
    with pytest.raises(ValueError, match="decay_type='stage_wise'"):
        build(vit, dict(decay_rate=0.9, decay_type='stage_wise'))


def test_stage_wise_refuses_a_source_without_stages(models):
    # get_layer_depth (mmpretrain's ConvNeXt has one) is layer-wise only.
    with pytest.raises(ValueError, match=r"decay_type='stage_wise' needs "
                       r"stages, which depth_source='get_layer_depth'"):
        build(models['tiny'], dict(decay_rate=0.9, decay_type='stage_wise',
                                   num_layers=6,
                                   depth_source='get_layer_depth'))
    with pytest.raises(ValueError, match='depth_rules both decide'):
        build(models['tiny'], dict(decay_rate=0.9, decay_type='stage_wise',
                                   depth_rules=[('stages', 1)]))


def test_stage_wise_on_timm_convnext_uses_its_stages():
    # timm's ConvNeXt offers group_matcher (layer-wise); stage_wise takes
    # the stages of its trunk instead: stem id 0, stages.s (with its
    # downsample) id s + 1, the head the top id 5 of 4 stages + 2.
    with torch.device('meta'):
        model = timm.create_model('convnext_atto')
    expected = {}
    for name, p in model.named_parameters():
        layer_id = (0 if name.startswith('stem.') else
                    int(name.split('.')[1]) +
                    1 if name.startswith('stages.') else 5)
        expected[name] = (LR * 0.8**(5 - layer_id), WD)
    paramwise_cfg = dict(decay_rate=0.8, decay_type='stage_wise')
    constructor = LayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)),
        paramwise_cfg)
    assert constructor.plan(model)[2].source == 'trunk'
    check(per_param(model, constructor(model)), expected)


def test_mmseg_source_needs_num_layers_and_a_known_backbone(models):
    with pytest.raises(ValueError, match="depth_source='mmseg'.*num_layers"):
        build(models['tiny'], dict(decay_rate=0.9, depth_source='mmseg'))


def test_decay_type_without_a_decay_rate_is_refused(models):
    # Without decay_rate there is no decay for decay_type to shape.
    with pytest.raises(ValueError, match=r"decay_type='stage_wise' is given "
                       r'but no decay_rate'):
        build(models['tiny'], dict(decay_type='stage_wise'))
