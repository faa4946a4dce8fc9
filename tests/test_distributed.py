"""Layer decay in 2-process CPU runs: DDP, ZeRO, checkpoints and resume.

The end-to-end runs train the digits ViT with ``tools/dist_train.sh`` for 2
epochs, then resume to 3. ``patch_embed`` is frozen by the constructor's
``paramwise_cfg.freeze`` in both, which DDP only survives if the freeze
happens before the model is wrapped.
"""
import gc
import importlib.util
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODELS

from conftest import REPO, read_scalars
from mmlr.hooks.param_group_check import first_difference
from mmlr.optim import LayerDecayOptimWrapperConstructor, group_report

# 4 batches of 32 an epoch on each of the 2 ranks (mmengine's
# num_batch_per_epoch; the whole set would be 23): the wiring is the point.
ITERS_PER_EPOCH = 4
FREEZE = 'optim_wrapper.paramwise_cfg.freeze=[backbone.patch_embed]'
# The cosine's end is pinned so the 2-epoch run and its resume schedule the
# same curve: epoch e = 2, 3, 4 (counted from 1, after one epoch of warm-up)
# runs at eta_min + (lr0 - eta_min) * COSINE[e].
SHORT = [
    'train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1', 'param_scheduler.1.end=4', FREEZE,
    f'train_dataloader.num_batch_per_epoch={ITERS_PER_EPOCH}'
]
ETA_MIN = 1e-5
COSINE = {e: (1 + math.cos(math.pi * (e - 2) / 3)) / 2 for e in range(2, 5)}
VARIANTS = {
    'ddp': 'configs/vit_digits_layer_decay.py',
    'zero': 'configs/vit_digits_layer_decay_zero.py',
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_dist(config: str, *args: str, timeout: float = 240) -> str:
    """``bash tools/dist_train.sh CONFIG 2 ARGS``; its output, or a failure.

    Like conftest's ``run_tool``, but on timeout it stops torchrun with
    SIGTERM: torchrun starts the workers in sessions of their own, so the
    SIGKILL of ``subprocess.run`` would leave deadlocked workers behind.
    """
    process = subprocess.Popen(
        ['bash', 'tools/dist_train.sh', config, '2', *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ, 'PYTHON': sys.executable,
            'PORT': str(_free_port()),
            'OMP_NUM_THREADS': '1'
        })
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f'{config} did not finish in {timeout} s (deadlock?):\n'
                    f'{output[-4000:]}')
    assert process.returncode == 0, f'{config} exited {process.returncode}' \
        f':\n{output[-6000:]}'
    return output


def expected_groups(config: str) -> tuple[int, int]:
    """(groups, tensors) the constructor builds for ``config`` + FREEZE."""
    cfg = Config.fromfile(REPO / config)
    cfg.merge_from_dict(
        {'optim_wrapper.paramwise_cfg.freeze': ['backbone.patch_embed']})
    rows = group_report(cfg.optim_wrapper, MODELS.build(cfg.model)).rows
    return len(rows), sum(row.tensors for row in rows)


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_two_processes_train_checkpoint_and_resume_with_layer_decay(
        variant, tmp_path):
    config = VARIANTS[variant]
    groups, tensors = expected_groups(config)
    agreed = (f'ParamGroupCheckHook: {groups} parameter groups ({tensors} '
              'tensors) identical on all 2 ranks')

    first = run_dist(config, '--work-dir', str(tmp_path), '--cfg-options',
                     *SHORT)
    assert 'Distributed training: True' in first
    assert agreed in first
    assert ('ZeroCheckpointHook: every rank joins' in first) == (
        variant == 'zero')
    assert f'Epoch(train) [2][{ITERS_PER_EPOCH}/{ITERS_PER_EPOCH}]' in first
    assert (tmp_path / 'epoch_1.pth').exists()
    assert (tmp_path / 'epoch_2.pth').exists()

    resumed = run_dist(config, '--work-dir', str(tmp_path), '--resume',
                       '--cfg-options', *SHORT, 'train_cfg.max_epochs=3')
    assert 'resumed epoch: 2' in resumed
    assert agreed in resumed  # the loaded state agrees too
    assert f'Epoch(train) [3][{ITERS_PER_EPOCH}/{ITERS_PER_EPOCH}]' in resumed
    assert 'Final validation: accuracy/top1' in resumed

    # Every rank's share of the optimizer state reached the checkpoint (one
    # entry per trainable tensor) and was loaded back: AdamW counted the
    # steps of all 3 epochs, not just of the resumed one.
    optimizer = torch.load(
        tmp_path / 'epoch_3.pth', map_location='cpu',
        weights_only=True)['optimizer']
    assert len(optimizer['state']) == tensors
    assert {int(s['step']) for s in optimizer['state'].values()} == {
        3 * ITERS_PER_EPOCH}
    # Each group keeps its layer-decayed lr on the schedule: the checkpoint
    # holds the lr for the epoch after the 3rd.
    param_groups = optimizer['param_groups']
    assert len(param_groups) == groups
    assert len({g['lr_scale'] for g in param_groups}) == 6  # 0.75**0..5
    for group in param_groups:
        assert group['initial_lr'] == pytest.approx(2e-3 * group['lr_scale'])
        assert group['lr'] == pytest.approx(
            ETA_MIN + (group['initial_lr'] - ETA_MIN) * COSINE[4])
    # The resumed epoch ran at the schedule's lr for epoch 3 (logged: the
    # first group's, the head's at the full lr), not at a restarted warm-up.
    top = max(g['initial_lr'] for g in param_groups)
    assert top == pytest.approx(2e-3)
    epoch_3 = [r['lr'] for r in read_scalars(tmp_path)
               if 'loss' in r and r['epoch'] == 3]
    assert len(epoch_3) == ITERS_PER_EPOCH
    assert epoch_3 == pytest.approx(
        [ETA_MIN + (top - ETA_MIN) * COSINE[3]] * ITERS_PER_EPOCH)


def _group(lr, *names):
    return {'lr': lr, 'weight_decay': 0.05, 'params': list(names)}


def test_first_difference_names_rank_group_and_field():
    same = {'': [_group(1e-3, 'a'), _group(2e-3, 'b', 'c')]}
    assert first_difference([same, same]) is None
    other_lr = {'': [_group(1e-3, 'a'), _group(3e-3, 'b', 'c')]}
    assert first_difference([same, same, other_lr]) == (
        "group 1 differs in 'lr': rank 2 has 0.003, rank 0 0.002")
    other_order = {'': [_group(1e-3, 'a'), _group(2e-3, 'c', 'b')]}
    assert first_difference([same, other_order]) == (
        "group 1 differs in 'params': rank 1 has ['c', 'b'], rank 0 "
        "['b', 'c']")
    fewer = {'': [_group(1e-3, 'a', 'b', 'c')]}
    assert first_difference([same, fewer]) == (
        'rank 1 has 1 parameter groups, rank 0 2')


def _probe():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    constructor = LayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='SGD', lr=0.1)), dict(freeze=['0']))
    return model, constructor


def test_freezing_a_model_ddp_already_wraps_is_refused(gloo_world_of_one):
    # DDP registered 0.weight and 0.bias for reduction when it wrapped the
    # model; freezing them now would fail at the second iteration.
    model, constructor = _probe()
    with pytest.raises(ValueError, match=r"froze 2 parameters \(e\.g\. "
                       r"'0\.weight'\) of a model already wrapped in "
                       'DistributedDataParallel'):
        constructor(MMDistributedDataParallel(model))


@pytest.mark.parametrize('steps_before', [0, 1])
def test_ddp_fails_after_a_parameter_is_frozen_once_wrapped(
        gloo_world_of_one, steps_before):
    # Why the constructor refuses the above: DDP fixed at wrapping the
    # parameters whose gradients it reduces. The first backward after the
    # freeze leaves 0.weight's reduction unfinished, and the iteration after
    # it stops in its forward (frozen after wrapping: at iteration 2; frozen
    # mid-run, after iteration n: at n + 2).
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    ddp = nn.parallel.DistributedDataParallel(model)
    x = torch.ones(3, 4)
    for _ in range(steps_before):
        ddp(x).sum().backward()
    model[0].weight.requires_grad_(False)
    ddp(x).sum().backward()
    with pytest.raises(RuntimeError,
                       match='Expected to have finished reduction'):
        ddp(x)


def test_freezing_before_wrapping_or_with_unused_detection_is_fine(
        gloo_world_of_one):
    model, constructor = _probe()
    assert constructor.freeze(model) == ['0.weight', '0.bias']
    assert constructor.freeze(model) == []  # already frozen
    groups = constructor(MMDistributedDataParallel(model)).param_groups
    assert [len(g['params']) for g in groups] == [2]

    model, constructor = _probe()
    ddp = MMDistributedDataParallel(model, find_unused_parameters=True)
    groups = constructor(ddp).param_groups
    assert [len(g['params']) for g in groups] == [2]


def _gloo_threads() -> dict[int, str]:
    """{thread id: name} of this process's threads named by torch's gloo
    backend (its workers 'pt_gloo_runloop', its transport 'gloo_tcp_loop')."""
    threads = {}
    for task in Path('/proc/self/task').iterdir():
        try:
            name = (task / 'comm').read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if 'gloo' in name:
            threads[int(task.name)] = name
    return threads


@pytest.mark.skipif(not Path('/proc/self/task').is_dir(),
                    reason='thread names are read from /proc')
def test_train_tool_ends_the_gloo_threads_before_it_returns(
        tmp_path, monkeypatch):
    # A rank that still has gloo threads when the interpreter shuts down can
    # abort after a good run ("terminate called without an active
    # exception"). DDP's reducer in the Runner's reference cycles kept the
    # process group, so destroying it left the threads running; with the
    # garbage collector off (as it may simply not have run yet), they would
    # survive to the end.
    if dist.is_initialized():  # left by an earlier test: let main make one
        gc.collect()
        dist.destroy_process_group()
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                           MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(
        'tool_train_gloo_threads', REPO / 'tools' / 'train.py')
    train_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tool)
    before = _gloo_threads()

    gc.disable()
    try:
        train_tool.main([
            str(REPO / VARIANTS['ddp']), '--launcher', 'pytorch', '--work-dir',
            str(tmp_path), '--cfg-options', 'train_cfg.max_epochs=1',
            'param_scheduler.1.end=2', 'default_hooks.checkpoint.interval=1',
            'experiment_name=gloo_threads_end'
        ])
        left = {tid: name for tid, name in _gloo_threads().items()
                if tid not in before}
    finally:
        gc.enable()
    assert (tmp_path / 'epoch_1.pth').exists()
    assert not dist.is_initialized()
    assert left == {}
