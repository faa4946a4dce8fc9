"""The layer-decay and linear-probing example configs, trained end to end
(short versions) from a briefly pretrained digits ViT, as a user would
fine-tune from a checkpoint."""

import pytest
import torch

import mmlr  # noqa: F401  (weights_only loading of mmengine checkpoints)
from conftest import final_accuracy, read_scalars, train_in_process

# two epochs: the base schedule's cosine starts after one epoch of warm-up
# and batches of 64 (23 iterations per epoch) to keep the test short
SHORT = [
    'train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=2',
    'train_dataloader.batch_size=64'
]


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('pretrain')
    train_in_process('configs/vit_digits.py', work_dir, *SHORT)
    return work_dir / 'epoch_2.pth'


def test_vit_layer_decay_config_trains_with_decayed_lrs(tmp_path, pretrained):
    log = train_in_process('configs/vit_digits_layer_decay.py', tmp_path,
                           f'load_from={pretrained}', *SHORT)
    # 4 blocks -> 6 layer ids (stem, 4 blocks, head), each with decayed
    # weights and undecayed 1-D parameters / tokens: 12 groups.
    assert ('56 trainable tensors in 12 groups (layer depths from: '
            'group_matcher)') in log
    # mmengine logs lr of the first group and base_lr (the optimizer's
    # defaults); the first group is the head's, at the full lr, so both
    # are the optimizer's lr on its schedule at every step, and the decayed
    # layers' lrs are recorded beside them: the stem at 0.75 ** (6 - 1 - 0).
    records = read_scalars(tmp_path)
    main = [r for r in records if 'loss' in r]
    assert len(main) == 2 * 2  # 23 iterations per epoch, every 10th
    layers = [r for r in records if 'lr_layer_0' in r]
    for r, per_layer in zip(main, layers, strict=True):
        assert r['lr'] == r['base_lr']
        assert per_layer['lr_layer_0'] / r['lr'] == pytest.approx(0.75**5)
    assert final_accuracy(log) >= 30.0  # trains: 3x chance


def test_linear_probe_config_trains_only_the_head(tmp_path, pretrained):
    log = train_in_process('configs/vit_digits_linear_probe.py', tmp_path,
                           f'load_from={pretrained}', *SHORT)
    # timm ViT: 56 tensors; head.weight and head.bias, both without weight
    # decay at the same lr, share one group.
    assert '2 trainable tensors in 1 group (layer depths' in log
    assert '54 frozen left out' in log
    before = torch.load(pretrained, weights_only=True)['state_dict']
    after = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)
    changed = sorted(k for k in before
                     if not torch.equal(before[k], after['state_dict'][k]))
    assert changed == ['backbone.head.bias', 'backbone.head.weight']
    for group in after['optimizer']['param_groups']:
        assert (group['momentum'], group['weight_decay']) == (0.9, 0.0)
    assert final_accuracy(log) >= 30.0  # trains: 3x chance
