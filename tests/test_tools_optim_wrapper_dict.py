"""Both tools on a config that builds several optimizers (an
``OptimWrapperDict``, as mmagic's GAN configs do): one track per optimizer,
``param_scheduler`` keyed by name, as ``Runner.build_param_scheduler``
builds it. The tools run in this process, where the test's own model and
constructor are registered."""
import csv
import importlib.util

import numpy as np
import pytest
import torch.nn as nn
from mmengine.optim import OptimWrapperDict
from mmengine.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from timm.models.vision_transformer import VisionTransformer

from conftest import REPO, warm_up_then_cosine_by_hand

ITERS_PER_EPOCH = 10


@MODELS.register_module(force=True)
class GanForToolTest(nn.Module):
    """A ViT generator and a small MLP discriminator."""

    def __init__(self):
        super().__init__()
        self.generator = VisionTransformer(
            img_size=8, patch_size=2, in_chans=1, num_classes=10,
            embed_dim=16, depth=2, num_heads=2)
        self.discriminator = nn.Sequential(
            nn.Linear(10, 8), nn.LayerNorm(8), nn.Linear(8, 1))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
class PerModuleConstructorForToolTest:
    """mmagic's ``MultiOptimWrapperConstructor`` in short: one optim wrapper
    per named submodule, each built by its own constructor."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        self.cfgs = optim_wrapper_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        wrappers = {}
        for name, cfg in self.cfgs.items():
            cfg = dict(cfg)
            constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
                dict(type=cfg.pop('constructor',
                                  'DefaultOptimWrapperConstructor'),
                     paramwise_cfg=cfg.pop('paramwise_cfg', None),
                     optim_wrapper_cfg=cfg))
            wrappers[name] = constructor(getattr(model, name))
        return OptimWrapperDict(**wrappers)


CONFIG = f'''
default_scope = 'mmlr'
custom_imports = dict(imports=['mmlr'])
model = dict(type='GanForToolTest')
train_cfg = dict(by_epoch=True, max_epochs=6)
optim_wrapper = dict(
    constructor='PerModuleConstructorForToolTest',
    generator=dict(
        constructor='LayerDecayOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        paramwise_cfg=dict(layer_decay_rate=0.5)),
    discriminator=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)))
param_scheduler = dict(
    generator=[
        dict(type='LinearLR', start_factor=0.1, by_epoch=False,
             end={ITERS_PER_EPOCH}),
        dict(type='CosineAnnealingLR', begin=1, eta_min_ratio=0.01),
    ],
    discriminator=dict(type='MultiStepLR', milestones=[2, 4], gamma=0.1))
'''


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(
        f'tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / 'gan_two_optimizers.py'
    path.write_text(CONFIG)
    return str(path)


def generator_profile() -> np.ndarray:
    """The generator's schedule for a base lr of 1, stepped by hand with
    mmengine's classes: warm-up over the first epoch's 10 iterations, cosine
    by epoch from epoch 1 to the default end 6 (T_max 5) to 1 % of it."""
    return np.array(warm_up_then_cosine_by_hand(
        1.0, 6, ITERS_PER_EPOCH, start_factor=0.1, eta_min_ratio=0.01))


def test_vis_lr_draws_one_track_per_optimizer(config_path, tmp_path,
                                              capsys):
    out = tmp_path / 'lr.png'
    load_tool('vis_lr').main([config_path, '--out', str(out),
                              '--iters-per-epoch', str(ITERS_PER_EPOCH)])
    printed = capsys.readouterr().out
    assert out.stat().st_size > 0
    with open(tmp_path / 'lr.csv') as f:
        rows = list(csv.reader(f))
    header, values = rows[0], np.array(rows[1:], dtype=float)
    assert values.shape[0] == 6 * ITERS_PER_EPOCH
    generator = [i for i, h in enumerate(header)
                 if h.startswith('generator/group')]
    [discriminator] = [i for i, h in enumerate(header)
                       if h.startswith('discriminator/group')]
    # SGD 0.1, times 0.1 after epochs 2 and 4 (10 iterations each)
    expected = np.repeat([0.1, 0.01, 0.001], 2 * ITERS_PER_EPOCH)
    np.testing.assert_allclose(values[:, discriminator], expected,
                               rtol=1e-12)
    # each generator group: its layer-decayed base lr times the profile;
    # a depth-2 ViT has layer ids 0..3: 1e-3 * 0.5 ** (3 - id)
    profile = generator_profile()
    bases = set()
    for column in generator:
        base = values[0, column] / profile[0]
        np.testing.assert_allclose(values[:, column], base * profile,
                                   rtol=1e-9)
        bases.add(round(float(np.log2(base / 1e-3)), 9))
    assert bases == {0.0, -1.0, -2.0, -3.0}
    assert 'generator: layer 3' in printed  # summary labels per track
    assert 'discriminator: group 0' in printed


def test_param_groups_lists_every_optimizer(config_path, tmp_path, capsys):
    per_param = tmp_path / 'params.csv'
    load_tool('param_groups').main([config_path, '--per-param',
                                    str(per_param)])
    printed = capsys.readouterr().out
    assert 'PerModuleConstructorForToolTest' in printed
    with open(per_param) as f:
        rows = list(csv.DictReader(f))
    model = GanForToolTest()
    assert len(rows) == len(list(model.named_parameters()))
    lrs = {row['name']: float(row['lr']) for row in rows}
    assert lrs['discriminator.0.weight'] == 0.1
    assert lrs['generator.head.weight'] == pytest.approx(1e-3)
    assert lrs['generator.patch_embed.proj.weight'] == pytest.approx(
        1e-3 * 0.5**3)
