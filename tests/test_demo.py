"""The digits demo: data split, model and metric, and the demo config
trained to the end as README's first command runs it (the suite's longest
test, in an early module so that a worker starts it early)."""
import torch
from conftest import final_accuracy, run_tool

from mmlr.demo import Accuracy, DigitsDataset, DigitsViT


def test_default_demo_config_reaches_95_percent(tmp_path):
    # about 40 s on an idle 2-core machine; generous for a loaded one
    result = run_tool('tools/train.py', 'configs/vit_digits.py',
                      '--work-dir', str(tmp_path), timeout=900)
    log = result.stdout + result.stderr
    assert final_accuracy(log) >= 95.0
    assert f'work_dir: {tmp_path}' in log
    assert (tmp_path / 'epoch_30.pth').exists()


def test_split_is_fixed_disjoint_stratified_and_complete():
    train, val = DigitsDataset('train'), DigitsDataset('val')
    assert len(train) + len(val) == 1797  # every image of sklearn's digits
    # 20 % of each class (rounded), so val holds 178*0.2 -> 36 zeros ...
    assert len(val) == 359
    assert torch.bincount(val.labels, minlength=10).min() >= 35
    train_images = {tuple(x.flatten().tolist()) for x in train.images}
    assert not any(
        tuple(x.flatten().tolist()) in train_images for x in val.images)
    assert torch.equal(DigitsDataset('val').labels, val.labels)
    assert not torch.equal(DigitsDataset('val', seed=1).labels, val.labels)


def test_items_are_scaled_single_channel_images():
    item = DigitsDataset('val')[0]
    assert item['inputs'].shape == (1, 8, 8)
    # pixel values 0..16 map to -1..1
    assert item['inputs'].min() >= -1 and item['inputs'].max() <= 1
    assert 0 <= int(item['label']) <= 9


def test_model_modes_and_metric():
    torch.manual_seed(0)
    model = DigitsViT(embed_dim=32, depth=2, num_heads=2)
    inputs = torch.randn(4, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 3])
    assert model(inputs).shape == (4, 10)
    assert model(inputs, labels, mode='loss')['loss'].ndim == 0
    preds = model(inputs, labels, mode='predict')
    assert [p['label'] for p in preds] == [0, 1, 2, 3]

    metric = Accuracy()
    metric.process(None, [dict(pred=1, label=1), dict(pred=2, label=3)])
    metric.process(None, [dict(pred=4, label=4), dict(pred=5, label=5)])
    assert metric.compute_metrics(metric.results) == dict(top1=75.0)
