"""The depth sources: one shape for all, and the INFO table naming the
trunk the constructor took."""
import inspect
import logging

import pytest
import timm
import torch
import torch.nn as nn

import mmlr.optim.layer_decay_constructor as constructor_module
from mmlr.optim import LayerDecayOptimWrapperConstructor
from mmlr.optim.paramwise_cfg import DEPTH_SOURCES, parse_paramwise_cfg

SGD = dict(type='SGD', lr=1e-3, weight_decay=0.05)


class Block(nn.Module):

    def __init__(self, dim: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, dim)


class Flat(nn.Module):
    """ViT layout: embedding, a flat run of blocks, a norm."""

    def __init__(self, depth: int):
        super().__init__()
        self.patch_embed = nn.Linear(4, 4)
        self.blocks = nn.ModuleList(Block() for _ in range(depth))
        self.norm = nn.LayerNorm(4)


class Stage(nn.Module):

    def __init__(self, depth: int):
        super().__init__()
        self.downsample = nn.Linear(4, 4)
        self.blocks = nn.Sequential(*(Block() for _ in range(depth)))


class Staged(nn.Module):
    """Swin layout: ``layers.i.blocks.j``."""

    def __init__(self, depths=(2, 3, 1)):
        super().__init__()
        self.patch_embed = nn.Linear(4, 4)
        self.layers = nn.ModuleList(Stage(d) for d in depths)


class ResNetLike(nn.Module):
    """ResNet layout: the stages ``layer1``, ``layer2`` are children of the
    backbone itself, next to the stem."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Linear(4, 4)
        self.layer1 = nn.Sequential(Block(), Block())
        self.layer2 = nn.Sequential(Block(), Block(), Block())


class Classifier(nn.Module):

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(4, 2)


def info_table(monkeypatch, model, paramwise_cfg) -> str:
    logged = []
    monkeypatch.setattr(constructor_module, 'print_log',
                        lambda msg, **kw: logged.append((kw['level'], msg)))
    LayerDecayOptimWrapperConstructor(dict(optimizer=SGD),
                                      paramwise_cfg)(model)
    [table] = [m for level, m in logged if level == logging.INFO]
    return table.splitlines()[1]  # after the constructor's name


@pytest.mark.parametrize('model, extra, trunk', [
    # the models above, counted by hand
    (Classifier(Flat(4)), {}, 'backbone.blocks, 4 blocks'),
    (Classifier(Staged((2, 3, 1))), {},
     'backbone.layers, 6 blocks in 3 stages'),
    (Classifier(ResNetLike()), {},
     'backbone.layer1..layer2, 5 blocks in 2 stages'),
    (Flat(3), {}, 'blocks, 3 blocks'),  # the whole model decayed
    (nn.ModuleDict(dict(vision=Flat(3), text=Flat(2))),
     dict(backbone=['vision', 'text']),
     'vision.blocks, 3 blocks; text.blocks, 2 blocks'),
    # Swin-T: depths (2, 2, 6, 2) in layers.i.blocks.j (the Swin paper);
    # timm's group_matcher would come first
    (lambda: Classifier(timm.create_model('swin_tiny_patch4_window7_224')),
     dict(depth_source='trunk'), 'backbone.layers, 12 blocks in 4 stages'),
])
def test_info_table_names_the_trunk_and_its_blocks(monkeypatch, model,
                                                   extra, trunk):
    if callable(model) and not isinstance(model, nn.Module):
        with torch.device('meta'):
            model = model()
    line = info_table(monkeypatch, model,
                      dict(layer_decay_rate=0.5, **extra))
    assert f'(layer depths from: trunk {trunk});' in line


def test_info_table_says_when_a_backbone_has_no_trunk(monkeypatch):
    # Flat(1) has one block: no run of two. The other backbone's trunk is
    # still used.
    model = nn.ModuleDict(dict(vision=Flat(3), text=Flat(1)))
    line = info_table(monkeypatch, model,
                      dict(layer_decay_rate=0.5, backbone=['vision', 'text']))
    assert ('(layer depths from: trunk vision.blocks, 3 blocks; none in '
            'text);') in line


def test_info_table_names_mmseg_table(monkeypatch):
    line = info_table(monkeypatch, Classifier(TinyBEiT()),
                      dict(decay_rate=0.5, num_layers=2))
    assert ('(layer depths from: mmseg vit layer-id table for backbone);'
            in line)


class WithLayerDepth(Flat):

    def get_layer_depth(self, name: str) -> tuple:
        return (1, 3) if name.startswith('blocks.') else (0, 3)


class WithKeywords(Flat):

    def lr_decay_keywords(self, rate: float) -> dict:
        return {'blocks.': rate, 'patch_embed': rate**2}


class WithGroupMatcher(Flat):

    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(stem=r'^patch_embed', blocks=r'^blocks\.(\d+)')


class TinyBEiT(nn.Module):
    """A class name and a ``layers`` child mmseg's ViT table knows."""

    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(4, 4)
        self.layers = nn.ModuleList(Block() for _ in range(2))


# A model each source applies to, and the config that selects it.
APPLIES = {
    'rules': (Flat(2), dict(depth_rules=[(r'blocks\.0\.', 1)])),
    'mmseg': (Classifier(TinyBEiT()), dict(num_layers=2)),
    'get_layer_depth': (WithLayerDepth(2), {}),
    'lr_decay_keywords': (WithKeywords(2), {}),
    'group_matcher': (WithGroupMatcher(2), {}),
    'trunk': (Flat(2), {}),
}


def test_every_source_has_one_shape():
    from mmlr.optim.layer_depths import LayerDepths
    from mmlr.optim.layer_ids import SOURCES
    assert list(SOURCES) == list(APPLIES)  # the order 'auto' tries them
    assert DEPTH_SOURCES == ('auto', *SOURCES)  # what the config accepts
    shapes = {
        name: list(inspect.signature(source).parameters)
        for name, source in SOURCES.items()
    }
    assert set(map(tuple, shapes.values())) == {('model', 'names', 'cfg')}
    for name, source in SOURCES.items():
        model, extra = APPLIES[name]
        cfg = parse_paramwise_cfg(
            dict(layer_decay_rate=0.5, depth_source=name, **extra), 0.05)
        names = [n for n, _ in model.named_parameters()]
        depths = source(model, names, cfg)
        assert isinstance(depths, LayerDepths), name
        assert depths.source == name
        assert depths.ids.keys() == set(names), name
    # None where a source does not apply: no depth_rules, no num_layers, no
    # model method; and the trunk of a flat run of blocks has no stages.
    plain = parse_paramwise_cfg(dict(layer_decay_rate=0.5), 0.05)
    stage_wise = parse_paramwise_cfg(
        dict(decay_rate=0.5, decay_type='stage_wise'), 0.05)
    model = Flat(2)
    names = [n for n, _ in model.named_parameters()]
    for name, source in SOURCES.items():
        cfg = stage_wise if name == 'trunk' else plain
        assert source(model, names, cfg) is None, name
