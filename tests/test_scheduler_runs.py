"""The scheduler example configs, trained (short) through tools/train.py."""
import pytest
import torch

from conftest import read_scalars, train_in_process

BASE_LR = 2e-3
ITERS = 45  # 1,438 training images in batches of 32
# the runs that check only the lr curve train 9 batches an epoch
FEW = 9
FEW_BATCHES = f'train_dataloader.num_batch_per_epoch={FEW}'
QUIET = ['model.drop_path_rate=0.0', 'model.proj_drop_rate=0.0',
         'model.attn_drop_rate=0.0', 'default_hooks.logger.interval=1',
         'default_hooks.checkpoint.interval=1']


def train(config: str, work_dir, *options: str, resume: bool = False) -> str:
    """tools/train.py in this process; the text of the run's log."""
    return train_in_process(config, work_dir, *QUIET, *options,
                            flags=('--resume', ) if resume else ())


def lr_by_iteration(work_dir) -> dict:
    """{0-based iteration: lr used in it} from the run's scalars."""
    return {r['iter'] - 1: r['lr'] for r in read_scalars(work_dir)
            if 'loss' in r}


def val_accuracies(work_dir) -> list:
    return [r['accuracy/top1'] for r in read_scalars(work_dir)
            if 'accuracy/top1' in r]


def test_internvl_linear_recipe(tmp_path):
    train('configs/vit_digits_internvl_linear.py', tmp_path,
          'train_cfg.max_epochs=4', FEW_BATCHES)
    lrs = lr_by_iteration(tmp_path)
    assert len(lrs) == 4 * FEW
    # warm-up over 2 epochs = 18 iterations from 1e-6 (factor 1e-6 / 2e-3):
    start = 1e-6 / BASE_LR
    for t in range(18):
        assert lrs[t] == pytest.approx(
            BASE_LR * (start + (1 - start) * t / 17), rel=1e-6)
    # then 1 -> 0.01 over iterations 18..35 (the last one at 0.01)
    for t in range(18, 36):
        assert lrs[t] == pytest.approx(
            BASE_LR * (1 - 0.99 * (t - 18) / 17), rel=1e-6)


def test_staircase(tmp_path):
    # hold until epoch 2, then stairs of 1 epoch (9 iterations) down to 0
    # at the last stair: window [18, 45), 26 // 9 = 2 stairs after the
    # first: factors 1, 0.5, 0 from iterations 18, 27, 36.
    train('configs/vit_digits_staircase.py', tmp_path,
          'train_cfg.max_epochs=5', 'param_scheduler.0.begin=2',
          'param_scheduler.0.interval=1', FEW_BATCHES)
    lrs = lr_by_iteration(tmp_path)
    expected = [BASE_LR] * 27 + [BASE_LR / 2] * 9 + [0.0] * 9
    assert [lrs[t] for t in range(45)] == pytest.approx(expected, abs=1e-12)


def test_linear_decay(tmp_path):
    # warm-up over epoch 0 by iteration, then by epoch 1 -> 0 over [1, 4):
    # factors 1, 0.5, 0 for epochs 1, 2, 3
    train('configs/vit_digits_linear_decay.py', tmp_path,
          'train_cfg.max_epochs=4', FEW_BATCHES)
    lrs = lr_by_iteration(tmp_path)
    assert lrs[0] == pytest.approx(BASE_LR * 0.01)
    assert [lrs[FEW * e + 5] for e in (1, 2, 3)] == pytest.approx(
        [BASE_LR, BASE_LR / 2, 0.0], abs=1e-12)


def torch_plateau_lrs(metrics: list, **kwargs) -> list:
    """PyTorch's ReduceLROnPlateau fed the same metrics: the lr in force
    after each of them (the independent reference)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE_LR)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        ref.step(m)
        out.append(opt.param_groups[0]['lr'])
    return out


# threshold 5 %: accuracy still rises after a few epochs, but by less
PLATEAU = dict(mode='max', factor=0.5, patience=0, min_lr=1e-5,
               threshold=0.05)
STRICT = ['param_scheduler.1.patience=0', 'param_scheduler.1.threshold=0.05']


def test_plateau_on_validation_accuracy_reduces_like_pytorch(tmp_path):
    train('configs/vit_digits_plateau.py', tmp_path, 'train_cfg.max_epochs=8',
          *STRICT)
    lrs, accuracy = lr_by_iteration(tmp_path), val_accuracies(tmp_path)
    expected = torch_plateau_lrs(accuracy, **PLATEAU)
    # the lr of epoch e + 1 follows the validation after epoch e
    assert [lrs[ITERS * (e + 1)] for e in range(7)] == pytest.approx(
        expected[:7])
    assert min(expected) < BASE_LR  # the test saw at least one reduction


def test_plateau_resumes_to_the_uninterrupted_sequence(tmp_path):
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    # exactness of the resume is the point: 15 batches an epoch
    options = [*STRICT, 'train_dataloader.num_batch_per_epoch=15']
    train('configs/vit_digits_plateau.py', whole, 'train_cfg.max_epochs=7',
          *options)
    train('configs/vit_digits_plateau.py', part, 'train_cfg.max_epochs=3',
          *options)
    resumed = train('configs/vit_digits_plateau.py', part,
                    'train_cfg.max_epochs=7', *options, resume=True)
    assert 'validating once' in resumed
    assert lr_by_iteration(part) == lr_by_iteration(whole)
    assert min(lr_by_iteration(whole).values()) < BASE_LR


def test_plateau_in_an_iteration_loop(tmp_path):
    train('tests/configs/plateau_iter.py', tmp_path, *STRICT)
    lrs, accuracy = lr_by_iteration(tmp_path), val_accuracies(tmp_path)
    assert len(accuracy) == 7  # every 20 of 140 iterations
    expected = torch_plateau_lrs(accuracy, **PLATEAU)
    # validation k runs after 20 k iterations, so iteration (0-based) 20 k
    # is the first to use its lr; from k = 3 on the 45-iteration warm-up is
    # over (reductions made during it persist, the chain multiplies)
    assert [lrs[20 * k] for k in range(3, 7)] == pytest.approx(expected[2:6])
    assert min(expected) < BASE_LR


def test_resume_with_a_different_scheduler_list_is_refused(tmp_path,
                                                           capsys):
    train('configs/vit_digits_staircase.py', tmp_path,
          'train_cfg.max_epochs=2', 'param_scheduler.0.begin=0', FEW_BATCHES)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        train('configs/vit_digits_plateau.py', tmp_path,
              'train_cfg.max_epochs=3', resume=True)
    assert stopped.value.code != 0
    assert ("the config has 2 param_scheduler entries (['LinearLR', "
            "'ReduceLR']) but the checkpoint has 1") in capsys.readouterr().err


def test_plateau_without_validation_warns_at_the_start(tmp_path):
    log = train('configs/vit_digits_plateau.py', tmp_path,
                'train_cfg.max_epochs=1', FEW_BATCHES, 'val_dataloader=None',
                'val_cfg=None', 'val_evaluator=None')
    assert ("ReduceLR monitors 'accuracy/top1', a validation metric, but "
            'this run has no validation') in log
    # said before the first training iteration is logged
    assert log.index('no validation') < log.index('Epoch(train)')


def test_plateau_on_the_training_loss_uses_epoch_means(tmp_path):
    # monitor the logged training loss: its mean over each epoch is checked
    # at the epoch's end (threshold 30 %: the loss keeps falling, but slower)
    train('configs/vit_digits_plateau.py', tmp_path, 'train_cfg.max_epochs=5',
          'param_scheduler.1.monitor=train/loss', 'param_scheduler.1.mode=min',
          'param_scheduler.1.patience=0', 'param_scheduler.1.threshold=0.3')
    records = [r for r in read_scalars(tmp_path) if 'loss' in r]
    assert len(records) == 5 * ITERS
    means = [sum(r['loss'] for r in records[e * ITERS:(e + 1) * ITERS]) /
             ITERS for e in range(5)]
    expected = torch_plateau_lrs(means, mode='min', factor=0.5, patience=0,
                                 threshold=0.3, min_lr=1e-5)
    lrs = lr_by_iteration(tmp_path)
    assert [lrs[ITERS * (e + 1)] for e in range(4)] == pytest.approx(
        expected[:4], rel=1e-6)
    assert min(expected[:4]) < BASE_LR
