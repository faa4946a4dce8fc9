"""A model with two trunks (vision and text towers): one schedule each."""
import pytest
import torch.nn as nn

from mmlr.optim import LayerDecayOptimWrapperConstructor


class Block(nn.Module):

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim)


class Tower(nn.Module):

    def __init__(self, stem: nn.Module, depth: int, dim: int = 8):
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(Block(dim) for _ in range(depth))


class TwoTowers(nn.Module):

    def __init__(self):
        super().__init__()
        self.vision = Tower(nn.Linear(4, 8), depth=3)
        self.text = Tower(nn.Embedding(10, 8), depth=2)
        self.head = nn.Linear(16, 2)


def lr_of_each_parameter(model, optim_wrapper) -> dict:
    lr = {id(p): g['lr'] for g in optim_wrapper.optimizer.param_groups
          for p in g['params']}
    return {name: lr[id(p)] for name, p in model.named_parameters()}


def test_each_trunk_is_decayed_over_its_own_depth():
    # lr * 0.5 ** (n - 1 - d) with n = blocks + 2 per tower:
    #   vision (n = 5): stem d=0 -> 1/16; blocks.i d=i+1 -> 1/8, 1/4, 1/2
    #   text   (n = 4): stem d=0 -> 1/8;  blocks.i d=i+1 -> 1/4, 1/2
    #   head, outside both towers: the top -> 1
    expected_scale = {
        'vision.stem': 1 / 16, 'vision.blocks.0': 1 / 8,
        'vision.blocks.1': 1 / 4, 'vision.blocks.2': 1 / 2,
        'text.stem': 1 / 8, 'text.blocks.0': 1 / 4, 'text.blocks.1': 1 / 2,
        'head': 1.0,
    }
    model = TwoTowers()
    constructor = LayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='SGD', lr=1e-3)),
        dict(layer_decay_rate=0.5, backbone=['vision', 'text'],
             depth_source='trunk'))
    lrs = lr_of_each_parameter(model, constructor(model))
    assert len(lrs) == 2 * 7 + 1  # every parameter placed (Embedding: 1)
    for name, lr in lrs.items():
        prefix = next(p for p in expected_scale if name.startswith(p + '.'))
        assert lr == pytest.approx(1e-3 * expected_scale[prefix]), name
