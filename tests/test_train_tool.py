"""tools/train.py and tools/dist_train.sh, end to end on the digits demo."""
import pickle
import socket

import pytest
import torch

from conftest import (REPO, read_scalars, run_tool,
                      tool_main, train_in_process, user_error_line)
from mmlr.user_errors import UserError

CONFIG = 'configs/vit_digits.py'
# Dropout off: mmengine reseeds the global RNG on resume instead of restoring
# it, so dropout masks (not our schedule) would differ after a resume.
DETERMINISTIC = [
    'model.drop_path_rate=0.0', 'model.proj_drop_rate=0.0',
    'model.attn_drop_rate=0.0', 'default_hooks.logger.interval=1',
    'default_hooks.checkpoint.interval=1'
]
# the wiring tests train 9 of the 45 batches an epoch
FEW_BATCHES = ['train_dataloader.num_batch_per_epoch=9']


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    # The cosine's end is pinned to 4 epochs so the 2-epoch run and the
    # 4-epoch run schedule the same curve (mmengine's schedulers keep the end
    # saved in the checkpoint).
    pinned = DETERMINISTIC + FEW_BATCHES + ['param_scheduler.1.end=4']
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    train_in_process(CONFIG, whole, 'train_cfg.max_epochs=4', *pinned)
    train_in_process(CONFIG, part, 'train_cfg.max_epochs=2', *pinned)
    assert (part / 'epoch_2.pth').exists()
    resumed = train_in_process(CONFIG, part, 'train_cfg.max_epochs=4',
                               *pinned, flags=('--resume', ))
    assert 'resumed epoch: 2' in resumed

    def epochs_3_and_4(work_dir):
        return [(r['iter'], r['lr'], r['loss']) for r in read_scalars(work_dir)
                if 'loss' in r and r['epoch'] >= 3]

    expected = epochs_3_and_4(whole)
    assert len(expected) == 2 * 9  # 9 batches an epoch
    assert epochs_3_and_4(part) == expected


def test_resume_from_an_explicit_checkpoint_path(tmp_path):
    train_in_process(CONFIG, tmp_path, 'train_cfg.max_epochs=2',
                     *DETERMINISTIC, *FEW_BATCHES)
    log = train_in_process(CONFIG, tmp_path, 'train_cfg.max_epochs=2',
                           *DETERMINISTIC, *FEW_BATCHES,
                           flags=('--resume', str(tmp_path / 'epoch_1.pth')))
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [2][9/9]' in log


def test_unknown_type_names_the_registry_and_the_name(tmp_path):
    # The real command line: one error line at the end, no traceback.
    result = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path),
                      '--cfg-options', 'model.type=mmlr.NoSuchNet',
                      check=False)
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        'error: mmlr.NoSuchNet is not in the mmengine::model registry.')


def test_unreadable_checkpoint_stops_before_the_environment_dump(tmp_path):
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    result = run_tool('tools/train.py', CONFIG, '--work-dir',
                      str(tmp_path / 'run'), '--resume', str(empty),
                      check=False, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ''  # the Runner prints its environment first
    assert result.stderr == (f'error: not a readable checkpoint: {empty} '
                             '(--resume; the file is empty)\n')


train_main = tool_main('train')
REPO_CONFIG = str(REPO / CONFIG)
MISSING = str(REPO / 'configs/no_such_config.py')


@pytest.mark.parametrize('args, message', [
    ([MISSING], f"config file '{MISSING}' does not exist"),
    ([REPO_CONFIG, '--cfg-options', 'train_cfg.max_epochs'],
     "--cfg-options: expected KEY=VALUE, got 'train_cfg.max_epochs'"),
    ([REPO_CONFIG, '--launcher', 'ssh'], "invalid choice: 'ssh'"),
    ([REPO_CONFIG, '--amp'], '--amp needs a CUDA, NPU or MLU device'),
])
def test_bad_command_lines_fail_with_one_clear_line(capsys, args, message):
    assert message in user_error_line(capsys, train_main, *args)


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    with pytest.raises(UserError, match='not a readable checkpoint'):
        train_main([REPO_CONFIG, '--work-dir', str(tmp_path), '--resume',
                    str(REPO / 'README.md'), '--debug'])


def test_pytorch_launcher_without_torchrun_says_what_is_missing(
        capsys, monkeypatch, tmp_path):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    line = user_error_line(capsys, train_main, REPO_CONFIG, '--work-dir',
                           str(tmp_path), '--launcher', 'pytorch')
    assert 'missing: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT' in line
    assert 'torchrun' in line


@pytest.mark.parametrize('option, message', [
    # DictAction keeps '[0' as a string: mmengine then failed with
    # int('[0[0[0...') deep in the scheduler
    ('param_scheduler.0.begin=[0', "'[0' is not a Python literal, and the "
     'config holds int 0 there'),
    # the trailing comma makes [0.001]: AdamW then failed on "list <= float"
    ('optim_wrapper.optimizer.lr=1e-3,', 'a list where the config holds '
     'float 0.002 there'),
])
def test_cfg_options_that_are_no_literal_are_refused_naming_the_key(
        capsys, tmp_path, option, message):
    line = user_error_line(capsys, train_main, REPO_CONFIG, '--work-dir',
                           str(tmp_path), '--cfg-options', option)
    key = option.partition('=')[0]
    assert line.startswith(f'error: --cfg-options {key}=')
    assert message in line


@pytest.mark.parametrize('content, reason', [
    (b'', 'the file is empty'),
    # random bytes: torch's weights-only unpickler stops at the first byte
    (bytes(range(247, 256)) * 50, 'Unsupported operand 247'),
])
def test_unreadable_checkpoint_is_one_line_without_weights_only_advice(
        capsys, tmp_path, content, reason):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(content)
    line = user_error_line(capsys, train_main, REPO_CONFIG, '--work-dir',
                           str(tmp_path / 'run'), '--resume', str(path),
                           '--cfg-options', 'train_cfg.max_epochs=2')
    assert line == f'error: not a readable checkpoint: {path} (--resume; ' \
        f'{reason})'
    assert 'weights_only' not in line


class _Payload:
    """Pickles as exec(code): a checkpoint that runs code when unpickled
    without weights_only."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return exec, (self.code, )


def crafted_checkpoint(path, marker, zip_format: bool = True):
    code = f'open({str(marker)!r}, "w").close()'
    torch.save({'meta': {'epoch': 1}, 'state_dict': _Payload(code)}, path,
               _use_new_zipfile_serialization=zip_format)
    # torch itself refuses it with weights_only: the payload is a global
    with pytest.raises(pickle.UnpicklingError, match='exec'):
        torch.load(path, weights_only=True)
    return path


@pytest.mark.parametrize('zip_format', [True, False])
@pytest.mark.parametrize('how', ['--resume PATH', 'load_from'])
def test_crafted_checkpoint_is_refused_and_nothing_runs(
        capsys, tmp_path, zip_format, how):
    marker = tmp_path / 'payload_ran'
    path = crafted_checkpoint(tmp_path / 'evil.pth', marker, zip_format)
    given = ['--resume', str(path)] if how == '--resume PATH' else [
        '--cfg-options', f'load_from={path}']
    line = user_error_line(capsys, train_main, REPO_CONFIG, '--work-dir',
                           str(tmp_path / 'run'), *given, '--cfg-options',
                           'train_cfg.max_epochs=2')
    source = '--resume' if how == '--resume PATH' else 'load_from'
    assert line == (f'error: not a readable checkpoint: {path} ({source}; '
                    'it asks for exec, which is code, not data; nothing of '
                    'it ran)')
    assert not marker.exists()


@pytest.mark.parametrize('how', ['--resume PATH', '--resume auto',
                                 'load_from'])
def test_forced_no_weights_only_load_is_refused_without_the_flag(
        capsys, monkeypatch, tmp_path, how):
    # torch.load without weights_only then unpickles anything: unguarded,
    # the payload ran and the run went on with exit code 0.
    marker = tmp_path / 'payload_ran'
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    path = crafted_checkpoint(work_dir / 'epoch_1.pth', marker)
    (work_dir / 'last_checkpoint').write_text(str(path))
    given = {'--resume PATH': ['--resume', str(path)],
             '--resume auto': ['--resume'],
             'load_from': ['--cfg-options', f'load_from={path}']}[how]
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    line = user_error_line(capsys, train_main, REPO_CONFIG, '--work-dir',
                           str(work_dir), *given, '--cfg-options',
                           'train_cfg.max_epochs=2')
    assert line.startswith('error: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set: '
                           'torch.load would run any code a checkpoint '
                           'holds')
    assert '--trust-checkpoint-code' in line
    assert not marker.exists()


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


def test_bad_paramwise_cfg_stops_before_the_runner(capsys, tmp_path):
    # The constructor checks its keys without a model: the Runner (which
    # makes the work dir and prints the environment first) is never built.
    work_dir = tmp_path / 'run'
    line = user_error_line(
        capsys, train_main, str(REPO / 'configs/vit_digits_layer_decay.py'),
        '--work-dir', str(work_dir), '--cfg-options',
        'optim_wrapper.paramwise_cfg.decay_multi=0.0')
    assert line.startswith("error: unknown paramwise_cfg key 'decay_multi'")
    assert not work_dir.exists()


def test_scheduler_error_after_the_runner_is_still_one_line(capsys, tmp_path):
    # one epoch leaves the base config's cosine (begin=1) an empty window:
    # mmengine's own check, when the Runner builds the schedulers
    line = user_error_line(capsys, train_main, REPO_CONFIG, '--work-dir',
                           str(tmp_path), '--cfg-options',
                           'train_cfg.max_epochs=1',
                           'experiment_name=scheduler_error_one_line')
    assert line == ('error: end should be larger than begin, but got '
                    'begin=1, end=1')
