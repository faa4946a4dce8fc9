"""SafeCheckpointHook: a save that fails or is interrupted half-way keeps
the last good checkpoint, and ``--resume`` finds it."""
import errno
import os
import signal

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.hooks import Hook

from conftest import wait_for_a_new_second
from mmlr.hooks.safe_checkpoint import is_complete_checkpoint, \
    resumable_checkpoint
from mmlr.launch import build_runner, prepare_config

CONFIG = 'configs/vit_digits.py'


def short_run(work_dir, epochs: int, resume: str | None = None,
              hooks: bool = True, options: dict | None = None):
    """Digits in 2 batches of 256 an epoch, a checkpoint every epoch and
    only the newest one kept."""
    cfg = prepare_config(
        CONFIG,
        work_dir=str(work_dir),
        resume=resume,
        cfg_options={
            'train_cfg.max_epochs': epochs,
            'train_cfg.val_interval': 100,
            'train_dataloader.batch_size': 256,
            'train_dataloader.num_batch_per_epoch': 2,
            'default_hooks.checkpoint.interval': 1,
            'default_hooks.checkpoint.max_keep_ckpts': 1,
            'param_scheduler.1.end': 3,
            **(options or {}),
        })
    cfg.experiment_name = f'safe-ckpt-{work_dir.name}-{epochs}-{resume}'
    wait_for_a_new_second(work_dir)
    if hooks:
        return build_runner(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)


def fail_on_second_save(monkeypatch, failure, which: int = 2):
    """Make the second (or ``which``-th) checkpoint write stop half-way with
    ``failure()``, as a full disk or a Ctrl-C would."""
    put = LocalBackend.put
    calls = []

    def half_then_fail(self, obj, filepath):
        calls.append(filepath)
        if len(calls) == which:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            failure()
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', half_then_fail)


def disk_full():
    raise OSError(errno.ENOSPC, 'No space left on device')


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def checkpoints(work_dir) -> list[str]:
    return sorted(p.name for p in work_dir.iterdir() if '.pth' in p.name)


@pytest.mark.parametrize('failure, raised', [(disk_full, OSError),
                                             (ctrl_c, KeyboardInterrupt)])
def test_a_failed_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch,
                                                      failure, raised):
    fail_on_second_save(monkeypatch, failure)
    with pytest.raises(raised):
        short_run(tmp_path, epochs=2).train()
    # mmengine alone deletes epoch_1.pth before writing epoch_2.pth, which
    # is left cut short: nothing to resume from.
    assert checkpoints(tmp_path) == ['epoch_1.pth']
    assert is_complete_checkpoint(str(tmp_path / 'epoch_1.pth'))
    assert (tmp_path / 'last_checkpoint').read_text() == str(
        tmp_path / 'epoch_1.pth')
    state = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    assert state['meta']['epoch'] == 1

    monkeypatch.undo()
    resumed = short_run(tmp_path, epochs=2, resume='auto')
    resumed.train()
    assert resumed.epoch == 2
    assert checkpoints(tmp_path) == ['epoch_2.pth']


class RisingScore(Hook):
    """Sets the validation score to the epoch before CheckpointHook reads
    it, so every validation is a new best."""

    priority = 'VERY_HIGH'

    def after_val_epoch(self, runner, metrics=None) -> None:
        metrics['accuracy/top1'] = float(runner.epoch)


def test_a_failed_best_save_keeps_the_previous_best(tmp_path, monkeypatch):
    # Only best checkpoints (no interval or last one), each epoch a new
    # best: epoch 2's replaces epoch 1's, epoch 3's write fails half-way.
    # mmengine deletes the previous best before it writes the new one.
    fail_on_second_save(monkeypatch, disk_full, which=3)
    runner = short_run(tmp_path, epochs=3, options={
        'train_cfg.val_interval': 1,
        'val_dataloader.dataset.indices': slice(0, 40),
        'default_hooks.checkpoint.interval': 100,
        'default_hooks.checkpoint.save_last': False,
        'default_hooks.checkpoint.save_best': 'accuracy/top1',
    })
    runner.register_hook(RisingScore())
    with pytest.raises(OSError):
        runner.train()
    best = 'best_accuracy_top1_epoch_2.pth'
    assert checkpoints(tmp_path) == [best]
    state = torch.load(tmp_path / best, weights_only=True)
    assert state['meta']['epoch'] == 2


def test_mmengine_alone_loses_every_checkpoint(tmp_path, monkeypatch):
    # The failure the hook exists for, shown on mmengine's CheckpointHook.
    fail_on_second_save(monkeypatch, disk_full)
    with pytest.raises(OSError):
        short_run(tmp_path, epochs=2, hooks=False).train()
    assert checkpoints(tmp_path) == ['epoch_2.pth']
    assert not is_complete_checkpoint(str(tmp_path / 'epoch_2.pth'))


def test_old_checkpoints_go_only_after_the_new_one_is_in_place(tmp_path):
    runner = short_run(tmp_path, epochs=3)
    runner.train()
    assert checkpoints(tmp_path) == ['epoch_3.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(
        tmp_path / 'epoch_3.pth')
    assert runner.message_hub.get_info('keep_ckpt_ids') == [3]


def make_files(work_dir, good: list[str], cut: list[str]) -> None:
    for i, name in enumerate(good + cut):
        path = work_dir / name
        torch.save({'step': i}, path)
        if name in cut:
            path.write_bytes(path.read_bytes()[:40])
        os.utime(path, (1000 + i, 1000 + i))


def test_a_stale_last_checkpoint_falls_back_to_the_newest_complete_one(
        tmp_path):
    make_files(tmp_path, good=['epoch_1.pth', 'epoch_2.pth'],
               cut=['epoch_3.pth'])
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text(str(tmp_path / 'epoch_3.pth'))
    path, why = resumable_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'epoch_2.pth')
    assert 'epoch_3.pth, which is not a whole checkpoint' in why

    pointer.write_text(str(tmp_path / 'epoch_9.pth'))
    path, why = resumable_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'epoch_2.pth')
    assert 'epoch_9.pth, which is missing' in why

    pointer.write_text(str(tmp_path / 'epoch_1.pth'))
    assert resumable_checkpoint(str(tmp_path)) == (
        str(tmp_path / 'epoch_1.pth'), None)

    pointer.unlink()
    path, why = resumable_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'epoch_2.pth') and 'missing' in why


def test_nothing_complete_left_starts_from_scratch_and_says_so(tmp_path):
    make_files(tmp_path, good=[], cut=['epoch_1.pth'])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    path, why = resumable_checkpoint(str(tmp_path))
    assert path is None and 'starts from scratch' in why
    (tmp_path / 'last_checkpoint').unlink()
    assert resumable_checkpoint(str(tmp_path)) == (None, None)


def test_resume_auto_in_a_runner_uses_the_fallback(tmp_path):
    short_run(tmp_path, epochs=1).train()
    # A Ctrl-C under mmengine alone leaves last_checkpoint naming a file
    # that was deleted.
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_7.pth'))
    runner = short_run(tmp_path, epochs=2, resume='auto')
    runner.train()
    assert runner.epoch == 2
    log = open(runner.log_dir + f'/{runner.timestamp}.log').read()
    assert 'epoch_7.pth, which is missing; resuming from ' \
        f'{tmp_path / "epoch_1.pth"}' in log
    assert 'resumed epoch: 1' in log


def test_a_sharded_checkpoint_is_complete_when_every_shard_is(tmp_path):
    # FSDPStrategy's state_dict_cfg='local': a directory of rank<i>.pth.
    (tmp_path / 'epoch_1.pth').mkdir()
    assert not is_complete_checkpoint(str(tmp_path / 'epoch_1.pth'))
    (tmp_path / 'epoch_2.pth').mkdir()
    make_files(tmp_path, good=['epoch_1.pth/rank0.pth',
                               'epoch_1.pth/rank1.pth',
                               'epoch_2.pth/rank0.pth'],
               cut=['epoch_2.pth/rank1.pth'])
    assert is_complete_checkpoint(str(tmp_path / 'epoch_1.pth'))
    assert not is_complete_checkpoint(str(tmp_path / 'epoch_2.pth'))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    path, why = resumable_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'epoch_1.pth')
    assert 'epoch_2.pth, which is not a whole checkpoint' in why
