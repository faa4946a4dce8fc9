"""tools/train.py and tools/dist_train.sh, end to end on the digits demo."""
import socket

import pytest

from conftest import final_accuracy, read_scalars, run_tool

CONFIG = 'configs/vit_digits.py'
# Dropout off: mmengine reseeds the global RNG on resume instead of restoring
# it, so dropout masks (not our schedule) would differ after a resume.
DETERMINISTIC = [
    'model.drop_path_rate=0.0', 'model.proj_drop_rate=0.0',
    'model.attn_drop_rate=0.0', 'default_hooks.logger.interval=1',
    'default_hooks.checkpoint.interval=1'
]


def test_default_demo_config_reaches_95_percent(tmp_path):
    # about 40 s on an idle 2-core machine; generous for a loaded one
    result = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path),
                      timeout=900)
    log = result.stdout + result.stderr
    assert final_accuracy(log) >= 95.0
    assert f'work_dir: {tmp_path}' in log
    assert (tmp_path / 'epoch_30.pth').exists()


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    # The cosine's end is pinned to 4 epochs so the 2-epoch run and the
    # 4-epoch run schedule the same curve (mmengine's schedulers keep the end
    # saved in the checkpoint).
    pinned = DETERMINISTIC + ['param_scheduler.1.end=4']
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    run_tool('tools/train.py', CONFIG, '--work-dir', str(whole),
             '--cfg-options', 'train_cfg.max_epochs=4', *pinned)
    run_tool('tools/train.py', CONFIG, '--work-dir', str(part),
             '--cfg-options', 'train_cfg.max_epochs=2', *pinned)
    assert (part / 'epoch_2.pth').exists()
    resumed = run_tool('tools/train.py', CONFIG, '--work-dir', str(part),
                       '--resume', '--cfg-options', 'train_cfg.max_epochs=4',
                       *pinned)
    assert 'resumed epoch: 2' in resumed.stdout + resumed.stderr

    def epochs_3_and_4(work_dir):
        return [(r['iter'], r['lr'], r['loss']) for r in read_scalars(work_dir)
                if 'loss' in r and r['epoch'] >= 3]

    expected = epochs_3_and_4(whole)
    assert len(expected) == 2 * 45  # 1,438 images in batches of 32
    assert epochs_3_and_4(part) == expected


def test_resume_from_an_explicit_checkpoint_path(tmp_path):
    run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path),
             '--cfg-options', 'train_cfg.max_epochs=2', *DETERMINISTIC)
    result = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path),
                      '--resume', str(tmp_path / 'epoch_1.pth'),
                      '--cfg-options', 'train_cfg.max_epochs=2',
                      *DETERMINISTIC)
    log = result.stdout + result.stderr
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [2][45/45]' in log


@pytest.mark.parametrize('args, message', [
    (['configs/no_such_config.py'], "config file 'configs/no_such_config.py' "
     'does not exist'),
    ([CONFIG, '--cfg-options', 'train_cfg.max_epochs'],
     "--cfg-options: expected KEY=VALUE, got 'train_cfg.max_epochs'"),
    ([CONFIG, '--launcher', 'ssh'], "invalid choice: 'ssh'"),
    ([CONFIG, '--amp'], '--amp needs a CUDA, NPU or MLU device'),
])
def test_bad_command_lines_fail_with_one_clear_line(args, message):
    result = run_tool('tools/train.py', *args, check=False, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr


def test_unknown_type_names_the_registry_and_the_name(tmp_path):
    result = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path),
                      '--cfg-options', 'model.type=mmlr.NoSuchNet',
                      check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(
        "KeyError: 'mmlr.NoSuchNet is not in the mmengine::model registry.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_cpu_processes_train_to_the_end_with_checkpoints(tmp_path):
    result = run_tool(
        'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(tmp_path),
        '--cfg-options', 'train_cfg.max_epochs=2',
        'default_hooks.checkpoint.interval=1',
        env={'PORT': str(_free_port()), 'OMP_NUM_THREADS': '1'})
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    # each rank runs half of the 45 batches per epoch
    assert 'Epoch(train) [2][20/23]' in log
    assert (tmp_path / 'epoch_1.pth').exists()
    assert (tmp_path / 'epoch_2.pth').exists()
    assert 'Final validation: accuracy/top1' in log
