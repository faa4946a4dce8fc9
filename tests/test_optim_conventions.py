"""Config spellings and model conventions of mmpretrain, mmseg/mmdet, mmpose,
timm and InternVL give the lr and weight decay those projects define.

Each test builds a small model in that project's layout and works out every
parameter's expected values from the project's formula, written out here.
"""
import pytest
import timm
import torch
import torch.nn as nn
from timm.optim import param_groups_layer_decay

from mmlr.optim import LayerDecayOptimWrapperConstructor

LR, WD = 1e-3, 0.05


def build(model, paramwise_cfg, optimizer=None):
    optimizer = optimizer or dict(type='AdamW', lr=LR, weight_decay=WD)
    return LayerDecayOptimWrapperConstructor(
        dict(optimizer=optimizer), paramwise_cfg)(model)


def per_param(model, optim_wrapper) -> dict:
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            assert names[id(p)] not in out
            out[names[id(p)]] = (group['lr'], group['weight_decay'])
    return out


def check(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value), name


class EncoderLayer(nn.Module):
    """mmpretrain's TransformerEncoderLayer names: ln1, attn, ln2, ffn."""

    def __init__(self, dim):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.Sequential(nn.Linear(dim, 3 * dim), nn.Linear(
            3 * dim, dim))
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.GELU(),
                                 nn.Linear(dim, dim))


class MMViT(nn.Module):
    """mmpretrain's VisionTransformer layout (also mmseg's, mmpose's)."""

    def __init__(self, num_layers=4, dim=8):
        super().__init__()
        self.num_layers = num_layers
        self.patch_embed = nn.Module()
        self.patch_embed.projection = nn.Conv2d(3, dim, 2, 2)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.layers = nn.ModuleList(
            EncoderLayer(dim) for _ in range(num_layers))
        self.ln1 = nn.LayerNorm(dim)


class MMPretrainViT(MMViT):

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        # mmpretrain's convention (VisionTransformer.get_layer_depth):
        # cls_token, pos_embed, patch_embed -> 0; layers.i -> i + 1; the
        # rest of the backbone and anything outside the prefix -> top.
        num_layers = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name in ('cls_token', 'pos_embed') or name.startswith(
                'patch_embed'):
            return 0, num_layers
        if name.startswith('layers'):
            return int(name.split('.')[1]) + 1, num_layers
        return num_layers - 1, num_layers


class Classifier(nn.Module):
    """An ImageClassifier-like model: backbone + head (+ neck)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Module()
        self.head.fc = nn.Linear(8, 10)


def vit_depth(name: str, num_blocks: int) -> int:
    """BEiT/MAE depth: embeddings 0, block i -> i + 1, the rest on top."""
    if name.startswith(('backbone.cls_token', 'backbone.pos_embed',
                        'backbone.patch_embed')):
        return 0
    if name.startswith('backbone.layers.'):
        return int(name.split('.')[2]) + 1
    return num_blocks + 1


def test_mmpretrain_mae_vit_b_finetune_recipe():
    # mmpretrain configs/mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k
    model = Classifier(MMPretrainViT(num_layers=4))
    paramwise_cfg = dict(
        layer_decay_rate=0.65,
        custom_keys={
            '.ln': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0)
        })
    expected = {}
    for name, _ in model.named_parameters():
        # lr = base * 0.65 ** (num_layers - 1 - depth), num_layers = 4 + 2
        lr = LR * 0.65**(5 - vit_depth(name, 4))
        no_wd = any(k in '.' + name
                    for k in ('.ln', '.bias', '.cls_token', '.pos_embed'))
        expected[name] = (lr, 0.0 if no_wd else WD)
    check(per_param(model, build(model, paramwise_cfg)), expected)


@pytest.mark.parametrize('spelling', [
    dict(decay_rate=0.65, decay_type='layer_wise', num_layers=4),  # mmseg
    dict(layer_decay_rate=0.65, num_layers=4),  # mmpose ViTPose
])
def test_mmseg_and_mmpose_vit_spellings(spelling):
    # mmseg's MAE/BEiT backbones have no get_layer_depth: ids come from the
    # trunk (layers.i), as mmseg's get_layer_id_for_vit gives them; 1-D
    # parameters and biases get no weight decay (hard-coded there).
    model = Classifier(MMViT(num_layers=4))
    expected = {
        name: (LR * 0.65**(5 - vit_depth(name, 4)),
               0.0 if p.ndim == 1 or name.endswith('.bias') else WD)
        for name, p in model.named_parameters()
    }
    check(per_param(model, build(model, spelling)), expected)


def test_vitpose_config_with_its_custom_keys_typo_fixed():
    # mmpose td-hm_ViTPose-base: custom_keys with 'decay_multi' fixed
    model = Classifier(MMPretrainViT(num_layers=4))
    paramwise_cfg = dict(
        num_layers=4,
        layer_decay_rate=0.75,
        custom_keys={
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
            'relative_position_bias_table': dict(decay_mult=0.0),
            'norm': dict(decay_mult=0.0)
        })
    expected = {
        name: (LR * 0.75**(5 - vit_depth(name, 4)),
               0.0 if p.ndim == 1 or 'bias' in name or 'pos_embed' in name
               else WD)
        for name, p in model.named_parameters()
    }
    check(per_param(model, build(model, paramwise_cfg)), expected)
    paramwise_cfg['custom_keys']['bias'] = dict(decay_multi=0.0)
    with pytest.raises(ValueError, match="did you mean 'decay_mult'"):
        build(model, paramwise_cfg)


class MMConvNeXt(nn.Module):
    """mmpretrain's ConvNeXt layout: downsample_layers + stages."""

    def __init__(self, depths=(2, 2, 6, 2), dim=4):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GroupNorm(1, dim))
            for _ in depths)
        self.stages = nn.ModuleList(
            nn.Sequential(*[
                nn.Sequential(
                    nn.Conv2d(dim, dim, 3, groups=dim), nn.LayerNorm(dim),
                    nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim))
                for _ in range(d)
            ]) for d in depths)
        self.norm3 = nn.LayerNorm(dim)
        self.depths = depths

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        # mmpretrain ConvNeXt.get_layer_depth: layer-wise ids, which
        # decay_type='stage_wise' must not let through.
        max_layer_id = 12 if self.depths[-2] > 9 else 6
        if not param_name.startswith(prefix):
            return max_layer_id + 1, max_layer_id + 2
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'downsample_layers':
            layer_id = {0: 0, 1: 2, 2: 3, 3: max_layer_id}[int(parts[1])]
        elif parts[0] == 'stages':
            stage, block = int(parts[1]), int(parts[2])
            layer_id = {0: 1, 1: 2, 2: 3 + block // 3,
                        3: max_layer_id}[stage]
        else:
            layer_id = max_layer_id + 1
        return layer_id, max_layer_id + 2


def test_mmseg_convnext_stage_wise():
    # mmseg get_stage_id_for_convnext (also when the backbone has
    # mmpretrain's layer-wise get_layer_depth): downsample_layers -> 0,
    # stages.s -> s + 1, everything else -> num_layers + 1;
    # scale = rate ** (num_layers + 2 - 1 - id), with the config's
    # num_layers (6 for ConvNeXt-T upernet) -> 8 ids.
    model = Classifier(MMConvNeXt())
    model.head.fc = nn.Linear(4, 10)

    def stage_id(name):
        if name.startswith('backbone.downsample_layers'):
            return 0
        if name.startswith('backbone.stages'):
            return int(name.split('.')[2]) + 1
        return 7

    expected = {
        name: (LR * 0.9**(7 - stage_id(name)),
               0.0 if p.ndim == 1 or name.endswith('.bias') else WD)
        for name, p in model.named_parameters()
    }
    actual = per_param(
        model,
        build(model, dict(decay_rate=0.9, decay_type='stage_wise',
                          num_layers=6)))
    check(actual, expected)


TIMM_ARCHS = [
    'vit_tiny_patch16_224', 'deit_tiny_distilled_patch16_224',
    'beit_base_patch16_224', 'swin_tiny_patch4_window7_224', 'convnext_atto',
    'eva02_tiny_patch14_224', 'resnet18', 'vit_small_patch14_reg4_dinov2',
    'efficientnet_b0'
]


@pytest.mark.parametrize('arch', TIMM_ARCHS)
def test_group_matcher_depths_equal_timm_param_groups_layer_decay(arch):
    with torch.device('meta'):
        model = timm.create_model(arch, pretrained=False)
    # timm.create_optimizer_v2 passes the model's no_weight_decay() and
    # excludes 1-D parameters: flat_decay_mult=0 + model hints here.
    theirs = param_groups_layer_decay(
        model,
        weight_decay=WD,
        no_weight_decay_list=model.no_weight_decay() if hasattr(
            model, 'no_weight_decay') else (),
        layer_decay=0.65,
        min_scale=0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    expected = {
        names[id(p)]: (LR * g['lr_scale'], g['weight_decay'])
        for g in theirs for p in g['params']
    }
    ours = build(
        model,
        dict(layer_decay_rate=0.65, layer_decay_min_scale=0.01,
             flat_decay_mult=0.0))
    check(per_param(model, ours), expected)
    groups = ours.optimizer.param_groups
    assert len(groups) == len(theirs)  # merged exactly like timm's


@pytest.mark.parametrize('arch, tensors, groups', [
    ('vit_base_patch16_224', 152, 28),
    ('vit_large_patch16_224', 296, 52),
])
def test_mae_recipe_group_counts_for_timm_vit(arch, tensors, groups):
    # ViT-B: 12 blocks -> 14 layer ids (stem, blocks, head); each id holds
    # decayed weights and non-decayed 1-D / token parameters: 2 x 14 = 28.
    with torch.device('meta'):
        model = timm.create_model(arch, pretrained=False)
    for source in ('auto', 'trunk'):  # group_matcher, and our own trunk
        built = build(
            model,
            dict(layer_decay_rate=0.65, flat_decay_mult=0.0,
                 depth_source=source)).optimizer.param_groups
        assert sum(len(g['params']) for g in built) == tensors
        assert len(built) == groups


class DCNv3(nn.Module):
    """InternImage's DCNv3 parameter names."""

    def __init__(self, dim=4):
        super().__init__()
        self.offset = nn.Linear(dim, dim)
        self.attention_weights = nn.Linear(dim, dim)
        self.input_proj = nn.Linear(dim, dim)


class InternStyle(nn.Module):
    """InternVL conventions: lr_decay_keywords, no_weight_decay(_keywords),
    levels.i for freezing."""

    def __init__(self, depth=3, dim=4):
        super().__init__()
        self.depth = depth
        self.patch_embed = nn.Linear(dim, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, 2, dim))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), DCNv3(dim))
            for _ in range(depth))
        self.levels = nn.ModuleList(nn.Linear(dim, dim) for _ in range(11))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def lr_decay_keywords(self, decay_ratio):
        # intern_vit_6b.py: blocks.i. -> r ** (depth - i); stem r ** (depth+1)
        out = {f'blocks.{i}.': decay_ratio**(self.depth - i)
               for i in range(self.depth)}
        for key in ('patch_embed', 'pos_embed'):
            out[key] = decay_ratio**(self.depth + 1)
        return out

    def no_weight_decay(self):
        return {'pos_embed'}

    def no_weight_decay_keywords(self):
        return {'levels'}


def test_internvl_conventions():
    model = InternStyle()
    wrapper = build(
        model,
        dict(layer_decay_rate=0.875, dcn_lr_mult=0.1, freeze_backbone=[1],
             flat_decay_mult=0.0, bias_decay_mult=0.0),
        optimizer=dict(type='AdamW', lr=LR, weight_decay=WD))
    # freeze_backbone=[1] freezes levels.1 only, not levels.10
    assert not model.levels[1].weight.requires_grad
    assert model.levels[10].weight.requires_grad
    expected = {}
    for name, p in model.named_parameters():
        if name.startswith('levels.1.'):
            continue
        # InternVL set_weight_decay_and_lr: ratio of the first keyword that
        # is a substring, else 1; then DCN_LR_MUL for the DCNv3 names;
        # wd 0 for 1-D, '.bias', the skip list and skip keywords.
        ratio = next((r for k, r in model.lr_decay_keywords(0.875).items()
                      if k in name), 1.0)
        if any(k in name for k in ('offset', 'attention_weights')):
            ratio *= 0.1
        no_wd = (p.ndim == 1 or name.endswith('.bias')
                 or name == 'pos_embed' or 'levels' in name)
        expected[name] = (LR * ratio, 0.0 if no_wd else WD)
    check(per_param(model, wrapper), expected)


def test_every_trainable_parameter_once_over_35_timm_architectures():
    archs = [
        'vit_tiny_patch16_224', 'deit_tiny_patch16_224',
        'beit_base_patch16_224',
        'swin_tiny_patch4_window7_224', 'swinv2_tiny_window8_256',
        'convnext_atto', 'convnextv2_atto', 'eva02_tiny_patch14_224',
        'resnet18', 'resnet50', 'efficientnet_b0', 'mobilenetv3_small_100',
        'regnety_002', 'densenet121', 'levit_128', 'poolformer_s12',
        'coatnet_0_rw_224', 'maxvit_tiny_tf_224', 'cait_xxs24_224',
        'xcit_nano_12_p16_224', 'mixer_s16_224', 'resmlp_12_224',
        'pvt_v2_b0', 'twins_svt_small', 'crossvit_tiny_240',
        'edgenext_x_small',
        'efficientformer_l1', 'mobilevit_xxs', 'ghostnet_100', 'dla34',
        'vit_small_patch14_reg4_dinov2', 'fastvit_t8', 'hiera_tiny_224',
        'nextvit_small', 'tiny_vit_5m_224'
    ]
    assert len(set(archs)) == 35  # as README says
    for arch in archs:
        with torch.device('meta'):
            model = timm.create_model(arch, pretrained=False)
        params = list(model.parameters())
        params[0].requires_grad_(False)
        for source in ('auto', 'trunk'):
            groups = build(model, dict(
                layer_decay_rate=0.7, depth_source=source,
                flat_decay_mult=0.0)).optimizer.param_groups
            placed = [id(p) for g in groups for p in g['params']]
            assert len(placed) == len(set(placed)), arch
            assert set(placed) == {id(p) for p in params[1:]}, arch
