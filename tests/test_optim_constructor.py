"""LayerDecayOptimWrapperConstructor: the constructor contract, mmengine's
rules (golden tests against DefaultOptimWrapperConstructor), groups,
wrappers, errors and the build-time report."""
import logging
import subprocess
import sys
import textwrap

import pytest
import timm
import torch
import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

import mmlr.optim.layer_decay_constructor as constructor_module
from mmlr.optim import LayerDecayOptimWrapperConstructor, group_report

ADAMW = dict(type='AdamW', lr=1e-3, weight_decay=0.05)


def build(model, paramwise_cfg=None, optimizer=ADAMW, **wrapper):
    return LayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(optimizer), **wrapper), paramwise_cfg)(model)


def per_param(model, optim_wrapper) -> dict:
    """``name -> (lr, weight_decay)`` of every parameter in a group."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            assert names[id(p)] not in out, 'parameter in two groups'
            out[names[id(p)]] = (group['lr'], group['weight_decay'])
    return out


def assert_same(ours: dict, expected: dict) -> None:
    assert ours.keys() == expected.keys()
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value), name


class ConvBNNet(nn.Module):
    """Convs with BN, depthwise convs (with and without bias), a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        self.dw = nn.Conv2d(8, 8, 3, groups=8)
        self.dw_nobias = nn.Conv2d(8, 8, 3, groups=8, bias=False)
        self.pw = nn.Conv2d(8, 16, 1)
        self.gn = nn.GroupNorm(4, 16)
        self.ln = nn.LayerNorm(16)
        self.scale = nn.Parameter(torch.ones(16))  # flat, not a bias
        self.head = nn.Linear(16, 4)


class TinyViT(nn.Module):
    """ViT-style names without model hints (no no_weight_decay())."""

    def __init__(self, depth=3, dim=8):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.patch_embed = nn.Conv2d(3, dim, 2, 2)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 4)


def convnext():
    return timm.create_model('convnext_atto', pretrained=False)


MMENGINE_RULES = dict(
    bias_lr_mult=2.0,
    bias_decay_mult=0.5,
    norm_decay_mult=0.0,
    dwconv_decay_mult=0.1,
    flat_decay_mult=0.3)


@pytest.mark.parametrize('make_model', [ConvBNNet, convnext, TinyViT])
@pytest.mark.parametrize('paramwise_cfg', [
    MMENGINE_RULES,
    dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    # keys that name both fields: mmengine's "custom key wins" and our
    # per-field fall-through agree; longest key first, '.' at the root.
    dict(
        custom_keys={
            'head': dict(lr_mult=10.0, decay_mult=2.0),
            'head.bias': dict(lr_mult=3.0, decay_mult=0.0),
            '.cls_token': dict(lr_mult=0.5, decay_mult=0.0),
            'stages.1': dict(lr_mult=0.1, decay_mult=0.1),
        },
        **MMENGINE_RULES),
])
def test_same_lr_and_weight_decay_as_mmengine_default(make_model,
                                                      paramwise_cfg):
    torch.manual_seed(0)
    model = make_model()
    theirs = DefaultOptimWrapperConstructor(
        dict(optimizer=dict(ADAMW)), paramwise_cfg)(model)
    ours = build(model, dict(paramwise_cfg, model_hints=False))

    expected = per_param(model, theirs)
    assert_same(per_param(model, ours), expected)
    assert len(expected) == len(list(model.parameters()))


class ModulatedDeformConv2d(nn.Module):
    """Stands in for mmcv.ops' class: mmengine (and mmlr) recognise a DCN by
    isinstance of mmcv-full's DeformConv2d/ModulatedDeformConv2d, and the
    pack variants own the offset conv as ``conv_offset``."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(8, 8, 3, 3))
        self.bias = nn.Parameter(torch.zeros(8))
        self.conv_offset = nn.Conv2d(8, 27, 3)


class DCNNet(nn.Module):
    """A DCN, a conv named ``conv_offset`` outside any DCN, a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.neck = nn.Sequential(ModulatedDeformConv2d(), nn.BatchNorm2d(8))
        self.plain = nn.Module()
        self.plain.conv_offset = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 4)


@pytest.mark.parametrize('mmcv_full', [True, False])
def test_dcn_offset_lr_mult_as_mmengine_default(monkeypatch, mmcv_full):
    # Without mmcv-full (as here) mmengine knows no DCN and the key is
    # inert; with it, the offset conv of a DCN gets lr * 0.1 and neither
    # bias_lr_mult nor the bias/flat decay rules. mmcv-full is stood in for
    # by its availability check and an mmcv.ops holding the class above.
    import types

    import mmengine.optim.optimizer.default_constructor as mmengine_default

    import mmlr.optim.param_rules as param_rules
    if mmcv_full:
        ops = types.ModuleType('mmcv.ops')
        ops.DeformConv2d = type('DeformConv2d', (nn.Module, ), {})
        ops.ModulatedDeformConv2d = ModulatedDeformConv2d
        monkeypatch.setitem(sys.modules, 'mmcv.ops', ops)
        for module in (mmengine_default, param_rules):
            monkeypatch.setattr(module, 'mmcv_full_available', lambda: True)
    model = DCNNet()
    paramwise_cfg = dict(MMENGINE_RULES, dcn_offset_lr_mult=0.1)
    theirs = DefaultOptimWrapperConstructor(
        dict(optimizer=dict(ADAMW)), paramwise_cfg)(model)
    expected = per_param(model, theirs)
    assert_same(per_param(model, build(model, paramwise_cfg)), expected)
    offset_lr = 1e-3 * 0.1 if mmcv_full else 1e-3 * 2.0  # bias_lr_mult 2
    offset_wd = 0.05 if mmcv_full else 0.05 * 0.5  # bias_decay_mult 0.5
    assert expected['neck.0.conv_offset.bias'] == pytest.approx(
        (offset_lr, offset_wd))
    # the DCN's own bias and a conv_offset outside a DCN: the bias rules
    assert expected['neck.0.bias'] == expected['plain.conv_offset.bias'] \
        == pytest.approx((2e-3, 0.025))


def test_bypass_duplicate_as_mmengine_default():
    # A tensor under two names (tied weights) and a module under two names:
    # mmengine with bypass_duplicate=True keeps the first name's settings
    # and skips the second (without it, torch refuses the duplicates).
    model = TinyViT()
    model.tied = nn.Linear(8, 4)
    model.tied.weight = model.head.weight
    model.again = model.blocks[0]
    paramwise_cfg = dict(
        MMENGINE_RULES, bypass_duplicate=True,
        # both fields named: a key naming lr_mult alone differs on purpose
        # (mmengine#846, test_custom_key_sets_only_the_fields_it_names)
        custom_keys={'tied': dict(lr_mult=10.0, decay_mult=1.0),
                     'again': dict(lr_mult=5.0, decay_mult=1.0)})
    theirs = DefaultOptimWrapperConstructor(
        dict(optimizer=dict(ADAMW)), paramwise_cfg)(model)
    expected = per_param(model, theirs)
    ours = build(model, dict(paramwise_cfg, model_hints=False))
    assert_same(per_param(model, ours), expected)
    assert expected['head.weight'] == pytest.approx((1e-3, 0.05))
    assert 'again.1.weight' not in expected
    assert expected['tied.bias'] == pytest.approx((1e-2, 0.05))


def test_no_paramwise_cfg_gives_one_group_at_the_base_values():
    model = ConvBNNet()
    wrapper = build(model)
    assert isinstance(wrapper, OptimWrapper)
    [group] = wrapper.optimizer.param_groups
    assert (group['lr'], group['weight_decay']) == (1e-3, 0.05)
    assert len(group['params']) == len(list(model.parameters()))


def test_custom_key_sets_only_the_fields_it_names():
    # mmengine #846: there a key with lr_mult alone resets the norm's wd to
    # base_wd. Here norm_decay_mult still applies: wd = 0.05 * 0.
    model = TinyViT()
    lr_wd = per_param(
        model,
        build(model, dict(norm_decay_mult=0.0,
                          custom_keys={'blocks': dict(lr_mult=0.1)})))
    assert lr_wd['blocks.0.0.weight'] == pytest.approx((1e-4, 0.0))
    assert lr_wd['blocks.0.1.weight'] == pytest.approx((1e-4, 0.05))
    assert lr_wd['norm.weight'] == pytest.approx((1e-3, 0.0))


def test_rmsnorm_norm_subclasses_and_depthwise_1d_3d_convs():
    class MyNorm(nn.LayerNorm):
        pass

    model = nn.Sequential(
        nn.RMSNorm(4), MyNorm(4), timm.layers.RmsNorm(4),
        nn.Conv1d(4, 4, 3, groups=4, bias=False),
        nn.Conv3d(4, 4, 3, groups=4, bias=False), nn.Linear(4, 4, bias=False))
    lr_wd = per_param(
        model, build(model, dict(norm_decay_mult=0.0,
                                 dwconv_decay_mult=0.5)))
    assert_same({n: wd for n, (_, wd) in lr_wd.items()}, {
        '0.weight': 0.0,
        '1.weight': 0.0,
        '1.bias': 0.0,
        '2.weight': 0.0,
        '3.weight': 0.025,
        '4.weight': 0.025,
        '5.weight': 0.05
    })


def test_model_hints_are_honoured_unless_switched_off():
    vit = timm.create_model(
        'vit_tiny_patch16_224', pretrained=False, depth=2, img_size=32)
    assert 'pos_embed' in vit.no_weight_decay()
    assert per_param(vit, build(vit))['pos_embed'][1] == 0.0
    assert per_param(vit, build(vit, dict(model_hints=False)))[
        'pos_embed'][1] == 0.05


def test_wrapper_keys_pass_through_and_params_use_the_first_argument():
    model = TinyViT()
    wrapper = build(model, dict(layer_decay_rate=0.5),
                    clip_grad=dict(max_norm=1.0), accumulative_counts=2)
    assert wrapper.clip_grad_kwargs == dict(max_norm=1.0)
    assert wrapper._accumulative_counts == 2

    class FirstArgIsNotParams(torch.optim.SGD):
        def __init__(self, model_params, lr):
            super().__init__(model_params, lr=lr)

    from mmengine.registry import OPTIMIZERS
    OPTIMIZERS.register_module(module=FirstArgIsNotParams, force=True)
    wrapper = build(model, dict(layer_decay_rate=0.5),
                    optimizer=dict(type='FirstArgIsNotParams', lr=0.1))
    assert len(wrapper.optimizer.param_groups) == 5  # stem, 3 blocks, top


def test_groups_carry_lr_wd_and_metadata_and_are_merged_and_ordered():
    model = TinyViT(depth=3)
    groups = build(model, dict(layer_decay_rate=0.5,
                               flat_decay_mult=0.0)).optimizer.param_groups
    # 5 layer ids (stem, 3 blocks, top) x {decay, no decay}, top layer
    # first (group 0, whose lr mmengine logs, at the full lr), registration
    # order inside a layer;
    # stem: patch_embed.weight | cls/pos_embed (3-D, decayed) + bias no wd
    assert [(g['layer_id'], g['weight_decay']) for g in groups] == [
        (4, 0.0), (4, 0.05), (3, 0.0), (3, 0.05), (2, 0.0), (2, 0.05),
        (1, 0.0), (1, 0.05), (0, 0.05), (0, 0.0)
    ]
    for g in groups:
        # lr = 1e-3 * 0.5 ** (5 - 1 - layer_id)
        assert g['lr'] == pytest.approx(1e-3 * 0.5**(4 - g['layer_id']))
        assert g['lr_scale'] == pytest.approx(0.5**(4 - g['layer_id']))
    assert len({frozenset(g) for g in groups}) == 1  # same keys everywhere
    again = build(model, dict(layer_decay_rate=0.5, flat_decay_mult=0.0))
    assert [[id(p) for p in g['params']] for g in groups] == [
        [id(p) for p in g['params']] for g in again.optimizer.param_groups
    ]


def test_frozen_never_in_a_group_and_tied_weights_placed_once(monkeypatch):
    model = TinyViT()
    model.blocks[0].requires_grad_(False)
    model.tied = nn.Linear(8, 4)
    model.tied.weight = model.head.weight  # shared tensor, two names
    logged = []
    monkeypatch.setattr(constructor_module, 'print_log',
                        lambda msg, **kw: logged.append((kw['level'], msg)))
    groups = build(model, dict(layer_decay_rate=0.5)).optimizer.param_groups
    placed = [p for g in groups for p in g['params']]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert len(placed) == len(trainable) == len({id(p) for p in placed})
    assert {id(p) for p in placed} == trainable
    info = [m for level, m in logged if level == logging.INFO]
    assert len(info) == 1
    # block 0: LayerNorm weight + bias, Linear weight + bias
    assert '4 frozen left out; 1 shared placed once' in info[0]


def test_child_named_module_is_not_mistaken_for_a_wrapper():
    # mmengine's hasattr(model, 'module') would optimise only this child.
    model = nn.Module()
    model.module = nn.Linear(2, 2)
    model.head = nn.Linear(2, 2)
    groups = build(model).optimizer.param_groups
    assert sum(len(g['params']) for g in groups) == 4


def test_ddp_wrapper_is_unwrapped_and_fsdp_name_parts_stripped(
        gloo_world_of_one):
    from mmengine.model import MMDistributedDataParallel
    model = TinyViT()
    # an FSDP(use_orig_params) level in the names must not hide 'blocks.0'
    model.blocks[0] = nn.Module()
    model.blocks[0]._fsdp_wrapped_module = nn.Linear(8, 8)
    ddp = MMDistributedDataParallel(model)
    lr_wd = per_param(
        model,
        build(ddp, dict(custom_keys={'blocks.0.weight': dict(lr_mult=0.0)})))
    assert lr_wd['blocks.0._fsdp_wrapped_module.weight'][0] == 0.0
    assert len(lr_wd) == len(list(model.parameters()))


@pytest.mark.parametrize('paramwise_cfg, optimizer, message', [
    (dict(custom_keys={'bias': dict(decay_multi=0.0)}), ADAMW,
     "unknown field 'decay_multi' (did you mean 'decay_mult'?)"),
    (dict(decay_multi=0.0), ADAMW,
     "unknown paramwise_cfg key 'decay_multi' (did you mean "
     "'norm_decay_mult'?); accepted keys: custom_keys, bias_lr_mult"),
    (dict(layer_decay=0.7), ADAMW,
     "(did you mean 'layer_decay_rate'?)"),
    (dict(layer_decay_rate=1.5), ADAMW,
     'layer_decay_rate must be a number in (0, 1]'),
    (dict(layer_decay_rate=0.0), ADAMW,
     'layer_decay_rate must be a number in (0, 1]'),
    (dict(norm_decay_mult=0.0), dict(type='SGD', lr=0.1),
     'norm_decay_mult multiplies the optimizer\'s weight_decay'),
    (dict(custom_keys={'head': dict(decay_mult=0.0)}), dict(type='SGD',
                                                            lr=0.1),
     "custom_keys['head'].decay_mult multiplies"),
    (None, dict(type='AdamW', weight_decay=0.05),
     'optim_wrapper.optimizer.lr is required'),
    (dict(layer_decay_rate=0.5, depth_source='get_layer_depth'), ADAMW,
     "depth_source='get_layer_depth', but neither TinyViT nor its "
     'backbone offers it'),
    (dict(layer_decay_rate=0.5, depth_source='group_matcher'), ADAMW,
     "available here: ['trunk']"),
    (dict(layer_decay_rate=0.5, depth_rules=[('^head', 9)],
          depth_source='rules', num_layers=3), ADAMW,
     "put 'head.weight' at layer id 9, outside [0, 5)"),
    (dict(decay_type='stagewise'), ADAMW, "(did you mean 'stage_wise'?)"),
])
def test_bad_configs_fail_at_build_time_naming_the_key(
        paramwise_cfg, optimizer, message):
    with pytest.raises((ValueError, TypeError)) as error:
        build(TinyViT(), paramwise_cfg, optimizer=optimizer)
    assert message in str(error.value)


def test_get_layer_depth_outside_the_range_is_an_error():
    class Model(TinyViT):
        def get_layer_depth(self, name):
            return (5 if name.startswith('head') else 0), 5

    with pytest.raises(ValueError, match=r"'head.weight' at layer id 5, "
                       r'outside \[0, 5\)'):
        build(Model(), dict(layer_decay_rate=0.5))


def test_unplaced_parameters_are_reported_and_get_the_top(monkeypatch):
    logged = []
    monkeypatch.setattr(constructor_module, 'print_log',
                        lambda msg, **kw: logged.append((kw['level'], msg)))
    model = TinyViT()
    lr_wd = per_param(
        model,
        build(model,
              dict(layer_decay_rate=0.5,
                   depth_rules=[(r'^blocks\.(0|1)\.', 1),
                                (r'^blocks\.2\.', 2)])))
    # rules reach depth 2, so the top is 3 of 4 ids: scale 1 there,
    # blocks 0/1: 0.5 ** (3 - 1), block 2: 0.5 ** 1
    assert lr_wd['head.weight'][0] == pytest.approx(1e-3)
    assert lr_wd['blocks.1.1.weight'][0] == pytest.approx(1e-3 * 0.25)
    assert lr_wd['blocks.2.1.weight'][0] == pytest.approx(1e-3 * 0.5)
    [table] = [m for level, m in logged if level == logging.INFO]
    # tokens, patch_embed (2), final norm (2), head (2)
    assert ('8 parameters no depth rule placed were put at the top layer '
            '(full lr): cls_token, pos_embed, patch_embed.weight') in table


def test_one_info_table_a_debug_list_and_a_plan_without_optimizer(
        monkeypatch):
    logged = []
    monkeypatch.setattr(constructor_module, 'print_log',
                        lambda msg, **kw: logged.append((kw['level'], msg)))
    model = TinyViT()
    cfg = dict(constructor='LayerDecayOptimWrapperConstructor',
               optimizer=ADAMW, paramwise_cfg=dict(layer_decay_rate=0.5))
    rows = group_report(cfg, model).rows
    assert logged == []  # planning builds and logs nothing
    assert [r.layer_id for r in rows] == [4, 3, 2, 1, 0]  # top layer first
    assert sum(r.tensors for r in rows) == len(list(model.parameters()))
    assert rows[-1].names == ['cls_token', 'pos_embed', 'patch_embed.weight',
                              'patch_embed.bias']
    assert rows[-1].elements == 8 + 40 + 3 * 2 * 2 * 8 + 8

    build(model, cfg['paramwise_cfg'])
    levels = [level for level, _ in logged]
    assert levels == [logging.INFO, logging.DEBUG]
    table = logged[0][1].splitlines()
    assert len(table) == 3 + len(rows)  # title, summary, header, groups
    assert 'blocks.2.0.weight: layer 3' in logged[1][1]


def test_another_packages_root_registration_is_kept(tmp_path):
    # mmpose force-registers its own class of this name in mmengine's root.
    code = textwrap.dedent('''
        import logging
        from mmengine.logging import MMLogger
        from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT
        from mmengine.optim import build_optim_wrapper
        import torch.nn as nn

        @ROOT.register_module(force=True)
        class LayerDecayOptimWrapperConstructor:
            def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
                pass

        logger = MMLogger.get_instance('probe', log_level='WARNING')
        warnings = []
        handler = logging.Handler()
        handler.emit = lambda record: warnings.append(
            record.getMessage()) if record.levelno >= logging.WARNING else 0
        logger.addHandler(handler)
        import mmlr
        from mmlr.optim import LayerDecayOptimWrapperConstructor as Ours
        print('ROOT_KEEPS_THEIRS',
              ROOT.get('LayerDecayOptimWrapperConstructor') is
              LayerDecayOptimWrapperConstructor)
        print('WARNINGS', len([w for w in warnings
              if 'LayerDecayOptimWrapperConstructor' in w]))
        wrapper = build_optim_wrapper(nn.Linear(2, 2), dict(
            constructor='mmlr.LayerDecayOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.1),
            paramwise_cfg=dict(layer_decay_rate=0.5)))
        print('OURS', 'lr_scale' in wrapper.optimizer.param_groups[0])
    ''')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    marked = [line for line in result.stdout.splitlines()
              if line.split()[0] in ('ROOT_KEEPS_THEIRS', 'WARNINGS', 'OURS')]
    assert ' '.join(marked).split() == [
        'ROOT_KEEPS_THEIRS', 'True', 'WARNINGS', '1', 'OURS', 'True'
    ]


@pytest.mark.parametrize('constructor, expected', [
    (None, DefaultOptimWrapperConstructor),  # mmengine's default
    ('DefaultOptimWrapperConstructor', DefaultOptimWrapperConstructor),
    ('mmlr.LayerDecayOptimWrapperConstructor',
     LayerDecayOptimWrapperConstructor),
])
def test_build_constructor_builds_what_mmengines_build_optim_wrapper_builds(
        constructor, expected):
    from mmengine.config import ConfigDict
    from mmengine.optim import build_optim_wrapper

    from mmlr.optim import build_constructor
    cfg = ConfigDict(
        optimizer=dict(ADAMW),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_lr_mult=2.0))
    if constructor is not None:
        cfg.constructor = constructor
    before = cfg.to_dict()
    built = build_constructor(cfg)
    assert type(built) is expected
    assert cfg.to_dict() == before  # the config is not consumed
    # mmengine's own builder is the reference for the lr and weight decay
    # of every parameter.
    model = ConvBNNet()
    assert per_param(model, built(model)) == per_param(
        model, build_optim_wrapper(model, cfg))
