"""Loading mmengine checkpoints with torch.load(weights_only=True)."""
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from torch.distributed._shard.sharded_tensor import (ShardedTensor,
                                                     init_from_local_shards)
from torch.distributed._shard.sharded_tensor.shard import Shard

import mmlr  # noqa: F401  (applies the allow-list)
from mmlr.checkpoint import (check_checkpoint_file, history_buffer_getattr,
                             refuse_forced_code_loading)
from mmlr.user_errors import UserError


class _PickledAs:
    """Pickles as ``func(*args)``, to craft hostile checkpoints."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def mmengine_like_checkpoint() -> dict:
    # What Runner.save_checkpoint writes besides tensors: the message hub's
    # state (HistoryBuffers of numpy arrays; a numpy scalar among the runtime
    # info) and plain metadata.
    hub = MessageHub(f'ckpt-test-{id(object())}')
    for loss in (0.9, 0.7, 0.5):
        hub.update_scalar('train/loss', loss)
    hub.update_info('best_score', np.float64(97.5))
    return dict(
        meta=dict(epoch=2, iter=90, seed=0, mmengine_version='0.10.7'),
        state_dict={'w': torch.ones(2)},
        message_hub=hub.state_dict(),
        param_schedulers=[dict(last_step=3, base_values=[0.1])])


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'epoch_2.pth'
    torch.save(mmengine_like_checkpoint(), path)

    loaded = torch.load(path, weights_only=True)

    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    assert buffer.current() == pytest.approx(0.5)
    assert loaded['message_hub']['runtime_info']['best_score'] == 97.5


def test_without_mmlr_torch_refuses_the_same_checkpoint(tmp_path):
    # Proves the test above exercises the allow-list: a fresh process that
    # does not import mmlr cannot load the file.
    path = tmp_path / 'epoch_2.pth'
    torch.save(mmengine_like_checkpoint(), path)
    code = ('import torch, sys\n'
            'try:\n'
            f'    torch.load({str(path)!r}, weights_only=True)\n'
            'except Exception as e:\n'
            '    print(type(e).__name__, e); sys.exit(3)\n')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True,
                            text=True)
    assert result.returncode == 3
    assert 'HistoryBuffer' in result.stdout


@pytest.mark.parametrize('target, name', [
    (HistoryBuffer, '__init__'),
    (HistoryBuffer, 'update'),
    (np.ndarray, 'tofile'),
    (torch.Tensor, 'add_'),
    (ShardedTensor, '__init__'),
    (ShardedTensor, '_init_from_local_shards'),
])
def test_getattr_in_a_checkpoint_is_refused_beyond_history_buffer_stats(
        tmp_path, target, name):
    path = tmp_path / 'hostile.pth'
    torch.save({'x': _PickledAs(getattr, target, name)}, path)
    with pytest.raises(pickle.UnpicklingError, match='only allows'):
        torch.load(path, weights_only=True)


def test_getattr_stand_in_returns_exactly_the_statistics_methods():
    for name in ('min', 'max', 'mean', 'current'):
        assert history_buffer_getattr(HistoryBuffer,
                                      name) is getattr(HistoryBuffer, name)
    with pytest.raises(pickle.UnpicklingError):
        history_buffer_getattr(HistoryBuffer, 'statistics')
    with pytest.raises(pickle.UnpicklingError):
        history_buffer_getattr(object, 'mean')


def test_sharded_tensors_of_fsdp_local_checkpoints_load(
        gloo_world_of_one, tmp_path):
    # FSDPStrategy's state_dict_cfg='local' saves each rank's parameters and
    # optimizer moments as ShardedTensors (records of shards, metadata,
    # sharding spec, device and the saving rank's process-group sizes).
    shard = Shard.from_tensor_and_offsets(torch.arange(4.), [0], rank=0)
    sharded = init_from_local_shards([shard], 4)
    path = tmp_path / 'rank0.pth'
    torch.save({'state_dict': {'w': sharded},
                'optimizer': {'state': {'w': {'exp_avg': sharded}}}}, path)
    loaded = torch.load(path, weights_only=True)
    for tensor in (loaded['state_dict']['w'],
                   loaded['optimizer']['state']['w']['exp_avg']):
        assert isinstance(tensor, ShardedTensor)
        assert torch.equal(tensor.local_tensor(), torch.arange(4.))


def test_unrelated_globals_stay_refused(tmp_path):
    path = tmp_path / 'hostile.pth'
    torch.save({'x': _PickledAs(print, 'pwned')}, path)
    with pytest.raises(pickle.UnpicklingError, match='print'):
        torch.load(path, weights_only=True)


def test_numpy_1_spelling_of_array_reconstruction_loads():
    # numpy 1 wrote 'numpy.core.multiarray._reconstruct'; numpy 2 writes
    # 'numpy._core...'. The legacy (protocol 2) format names globals as plain
    # text, so renaming the module in the bytes makes a numpy-1 file.
    import io
    buffer = io.BytesIO()
    torch.save({'a': np.arange(3.0), 's': np.float64(2.5)},
               buffer,
               _use_new_zipfile_serialization=False)
    numpy2 = buffer.getvalue()
    assert b'numpy._core.multiarray' in numpy2
    numpy1 = numpy2.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')

    loaded = torch.load(io.BytesIO(numpy1), weights_only=True)

    assert loaded['a'].tolist() == [0.0, 1.0, 2.0]
    assert loaded['s'] == 2.5


def test_check_checkpoint_file_takes_an_mmengine_checkpoint(tmp_path):
    for zip_format in (True, False):
        path = tmp_path / f'epoch_2_{zip_format}.pth'
        torch.save(mmengine_like_checkpoint(), path,
                   _use_new_zipfile_serialization=zip_format)
        check_checkpoint_file(str(path), '--resume')  # nothing raised


@pytest.mark.parametrize('zip_format', [True, False])
@pytest.mark.parametrize('payload, asked', [
    ('exec', 'exec'),
    # through the allow-listed getattr: getattr(HistoryBuffer.__init__,
    # '__globals__') would reach builtins and exec
    ('getattr', "getattr(<class 'mmengine.logging.history_buffer."
     "HistoryBuffer'>, '__init__')"),
])
def test_check_checkpoint_file_refuses_code_and_runs_none(
        tmp_path, zip_format, payload, asked):
    marker = tmp_path / 'payload_ran'
    code = f'open({str(marker)!r}, "w").close()'
    if payload == 'exec':
        content = _PickledAs(exec, code)
    else:
        init = _PickledAs(getattr, HistoryBuffer, '__init__')
        content = _PickledAs(getattr, init, '__globals__')
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': content}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UserError) as error:
        check_checkpoint_file(str(path), 'load_from')
    assert str(error.value) == (
        f'not a readable checkpoint: {path} (load_from; it asks for {asked}, '
        'which is code, not data; nothing of it ran)')
    assert not marker.exists()


def test_forced_no_weights_only_load_needs_the_flag(monkeypatch):
    for value in ('1', 'yes', 'TRUE', 'y'):  # what torch.load takes as set
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', value)
        with pytest.raises(UserError, match='--trust-checkpoint-code'):
            refuse_forced_code_loading()
        refuse_forced_code_loading(trust_checkpoint_code=True)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', 'off')
    refuse_forced_code_loading()


def test_truncated_checkpoint_is_not_readable_and_no_advice(tmp_path):
    path = tmp_path / 'epoch_2.pth'
    torch.save(mmengine_like_checkpoint(), path)
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])  # a save cut short
    with pytest.raises(UserError) as error:
        check_checkpoint_file(str(path), '--resume')
    message = str(error.value)
    assert message.startswith(f'not a readable checkpoint: {path} (--resume; ')
    assert 'weights_only' not in message and '\n' not in message


def test_check_checkpoint_file_takes_a_sharded_checkpoint_directory(
        tmp_path):
    # FSDPStrategy's 'local' checkpoints: the files must be there; their
    # sharded tensors load only in the ranks' own process group, later.
    shards = tmp_path / 'epoch_2.pth'
    shards.mkdir()
    with pytest.raises(UserError, match='a directory without rank<i>.pth'):
        check_checkpoint_file(str(shards), '--resume')
    for rank in (0, 1):
        torch.save(mmengine_like_checkpoint(), shards / f'rank{rank}.pth')
    check_checkpoint_file(str(shards), '--resume')
