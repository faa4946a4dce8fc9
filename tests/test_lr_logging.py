"""The training log shows the lr the user set: ``lr`` on the console and in
``scalars.json`` is the optimizer's ``lr`` on its schedule (group 0 is a
group at full scale), and ``LayerLrLoggerHook`` records every layer id's lr
for the visualisation backends, off the console line."""
import logging
import re

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import VISBACKENDS
from mmengine.runner import Runner
from mmengine.visualization import BaseVisBackend

import mmlr.optim.layer_decay_constructor as constructor_module
from conftest import REPO, read_scalars, warm_up_then_cosine_by_hand
from mmlr.launch import build_runner, prepare_config
from mmlr.optim import LayerDecayOptimWrapperConstructor

CONFIG = str(REPO / 'configs/vit_digits_layer_decay.py')
LR, RATE, ETA_MIN, START_FACTOR = 2e-3, 0.75, 1e-5, 0.01  # the config's
# DigitsViT has 4 blocks: ids 0 (patch embedding, tokens), 1-4, 5 (head)
NUM_LAYERS = 4 + 2
EPOCHS, BATCH, INTERVAL = 3, 64, 5
SHORT = {
    'train_cfg.max_epochs': EPOCHS,
    'train_dataloader.batch_size': BATCH,
    # 12 of the 23 batches of 1,438 images: what is logged is the point,
    # not what is learnt
    'train_dataloader.num_batch_per_epoch': 12,
    'default_hooks.logger.interval': INTERVAL,
    'default_hooks.checkpoint.interval': EPOCHS,
    'train_cfg.val_interval': EPOCHS,
}
CONSOLE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]\s+'
                     r'base_lr: (\S+) lr: (\S+)  ')


def expected_lrs(lr: float, epoch_length: int, epochs: int = EPOCHS) -> list:
    """The lr of every iteration of a one-group optimizer at ``lr`` under
    mmengine's own LinearLR + CosineAnnealingLR, as the config schedules
    them (warm-up over the first epoch, cosine by epoch to the end)."""
    return warm_up_then_cosine_by_hand(lr, epochs, epoch_length,
                                       START_FACTOR, eta_min=ETA_MIN)


@VISBACKENDS.register_module(force=True)
class RecordingVisBackend(BaseVisBackend):
    """Stands for TensorBoard, wandb ...: remembers every add_scalars."""

    calls: list = []

    @property
    def experiment(self):
        return self

    def _init_env(self):
        pass

    def add_scalars(self, scalar_dict, step=0, file_path=None, **kwargs):
        self.calls.append((step, dict(scalar_dict)))


@pytest.fixture(scope='module')
def plain_run(tmp_path_factory):
    """The config run as mmpretrain's/mmseg's tools/train.py runs it: a
    plain Runner, mmlr only through custom_imports and custom_hooks."""
    work_dir = tmp_path_factory.mktemp('plain')
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(SHORT)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = 'lr_logging_plain'
    cfg.custom_hooks = [dict(type='mmlr.LayerLrLoggerHook')]
    cfg.visualizer = dict(
        type='Visualizer',
        vis_backends=[
            dict(type='LocalVisBackend'),
            dict(type='RecordingVisBackend')
        ])
    RecordingVisBackend.calls.clear()
    runner = Runner.from_cfg(cfg)
    runner.train()
    [log_file] = work_dir.glob('*/*.log')
    return work_dir, log_file.read_text(), len(runner.train_dataloader)


def test_console_lr_is_the_configured_lr_on_its_schedule(plain_run):
    _, log, epoch_length = plain_run
    full = expected_lrs(LR, epoch_length)
    lines = CONSOLE.findall(log)
    # every 5th of 12 iterations (LoggerHook drops the last 2 by default)
    assert len(lines) == EPOCHS * (epoch_length // INTERVAL)
    for epoch, batch, _, base_lr, lr in lines:
        it = (int(epoch) - 1) * epoch_length + int(batch) - 1
        # printed with 4 decimals of the mantissa: relative error < 5e-5
        assert float(lr) == pytest.approx(full[it], rel=1e-4), (epoch, batch)
        assert float(base_lr) == pytest.approx(full[it], rel=1e-4)
    assert 'lr_layer' not in log  # per-layer lrs stay off the console
    assert 'no group has optimizer.lr' not in log  # the head group is at lr


def test_scalars_lr_and_one_lr_per_layer_id(plain_run):
    work_dir, _, epoch_length = plain_run
    records = read_scalars(work_dir)
    main = [r for r in records if 'loss' in r]
    layers = [r for r in records if 'lr_layer_0' in r]
    assert len(main) == EPOCHS * (epoch_length // INTERVAL)
    full = expected_lrs(LR, epoch_length)
    for r in main:
        # the record of step s holds the lr iteration s trained with
        assert r['lr'] == pytest.approx(full[r['step'] - 1], rel=1e-12)
    # one per-layer record at each of the LoggerHook's records
    assert [(r['step'], r['iter'], r['epoch']) for r in layers] == [
        (r['step'], r['iter'], r['epoch']) for r in main]
    for layer in range(NUM_LAYERS):
        # lr * rate ** (n - 1 - d) on the same schedule (its absolute
        # eta_min included, which is why it is not just lr * factor)
        curve = expected_lrs(LR * RATE**(NUM_LAYERS - 1 - layer),
                             epoch_length)
        for r in layers:
            assert r[f'lr_layer_{layer}'] == pytest.approx(
                curve[r['step'] - 1], rel=1e-12), (layer, r['step'])
    assert {k for r in layers for k in r} == {
        f'lr_layer_{d}' for d in range(NUM_LAYERS)} | {'step', 'iter',
                                                         'epoch'}
    # every visualisation backend gets the same records, not only the file
    seen = [(step, record) for step, record in RecordingVisBackend.calls
            if 'lr_layer_0' in record]
    assert seen == [(r['step'], {k: v for k, v in r.items() if k != 'step'})
                    for r in layers]


def test_tools_train_logs_the_full_lr_and_adds_the_layer_hook(tmp_path):
    epochs = 2
    cfg = prepare_config(
        CONFIG, work_dir=str(tmp_path),
        cfg_options={**SHORT, 'train_cfg.max_epochs': epochs,
                     'default_hooks.checkpoint.interval': epochs,
                     'train_cfg.val_interval': epochs})
    cfg.experiment_name = 'lr_logging_tool'
    runner = build_runner(cfg)  # what tools/train.py runs
    runner.train()
    epoch_length = len(runner.train_dataloader)
    full = expected_lrs(LR, epoch_length, epochs)
    records = read_scalars(tmp_path)
    main = [r for r in records if 'loss' in r]
    assert len(main) == epochs * (epoch_length // INTERVAL)
    assert [r['lr'] for r in main] == pytest.approx(
        [full[r['step'] - 1] for r in main], rel=1e-12)
    layers = [r for r in records if 'lr_layer_0' in r]
    assert len(layers) == len(main)  # no custom_hooks needed
    for r, per_layer in zip(main, layers):
        assert per_layer[f'lr_layer_{NUM_LAYERS - 1}'] == r['lr']
        # warm-up, then the cosine's first epoch (its start value): every
        # group is at the same factor of its lr
        assert per_layer['lr_layer_0'] == pytest.approx(
            r['lr'] * RATE**(NUM_LAYERS - 1), rel=1e-12)


class ThreeLayers(nn.Module):
    """stem (id 0), block (id 1) by depth_rules; the head, which no rule
    names, goes to the top id 2."""

    def __init__(self):
        super().__init__()
        for name in ('stem', 'block', 'head'):
            self.add_module(name, nn.Linear(2, 2))


RULES = [(r'^stem\.', 0), (r'^block\.', 1)]


def build(paramwise_cfg: dict) -> list:
    optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.05)
    return LayerDecayOptimWrapperConstructor(
        dict(optimizer=optimizer),
        dict(layer_decay_rate=0.5, depth_rules=RULES,
             **paramwise_cfg))(ThreeLayers()).optimizer.param_groups


def test_group_0_is_at_the_optimizer_lr_even_with_lr_mults(monkeypatch):
    logged = []
    monkeypatch.setattr(constructor_module, 'print_log',
                        lambda msg, **kw: logged.append((kw['level'], msg)))
    # head.weight (registered first) gets 10x: head.bias is the head's
    # group at the plain lr and must come first.
    groups = build(dict(custom_keys={'head.weight': dict(lr_mult=10.0)}))
    assert [g['layer_id'] for g in groups] == [2, 2, 1, 0]
    assert [g['lr'] for g in groups] == pytest.approx(
        [1e-3, 1e-2, 1e-3 * 0.5, 1e-3 * 0.25])
    assert groups[0]['lr'] == 1e-3  # exactly what mmengine logs as lr
    assert not any('no group has' in m for _, m in logged)


def test_no_group_at_the_optimizer_lr_is_said_in_the_table(monkeypatch):
    logged = []
    monkeypatch.setattr(constructor_module, 'print_log',
                        lambda msg, **kw: logged.append((kw['level'], msg)))
    # the head frozen: the top trainable layer is the block, at 0.5 x lr
    groups = build(dict(freeze=['head']))
    assert [g['layer_id'] for g in groups] == [1, 0]
    [table] = [m for level, m in logged if level == logging.INFO]
    assert table.splitlines()[-1] == (
        "no group has optimizer.lr=0.001: the training log's lr is group "
        "0's (0.5 x optimizer.lr on its schedule); base_lr is "
        'optimizer.lr=0.001 on its schedule')


class FakeVisualizer:
    def __init__(self):
        self.calls = []

    def add_scalars(self, scalar_dict, step=0, file_path=None):
        self.calls.append((step, scalar_dict, file_path))


def fake_runner(optim_wrapper, hierarchy: bool):
    """What the hook reads of a Runner: an iteration-based run (no epoch
    in the records) logging every 2nd of 5 iterations."""
    from types import SimpleNamespace

    from mmengine.hooks import LoggerHook
    logger = LoggerHook(interval=2)
    logger.json_log_path = 'run.json'  # set by LoggerHook.before_run
    return SimpleNamespace(
        hooks=[logger], optim_wrapper=optim_wrapper,
        log_processor=SimpleNamespace(log_with_hierarchy=hierarchy,
                                      by_epoch=False),
        train_dataloader=[None] * 5, visualizer=FakeVisualizer(), iter=0,
        epoch=0)


def run_iterations(hook, runner, n: int) -> None:
    hook.before_train(runner)
    for it in range(n):
        runner.iter = it
        hook.before_train_iter(runner, it)
        for wrapper in getattr(runner.optim_wrapper, 'optim_wrappers',
                               {'': runner.optim_wrapper}).values():
            for group in wrapper.optimizer.param_groups:
                group['lr'] *= 0.5  # a scheduler step after the iteration
        hook.after_train_iter(runner, it)


def test_hook_names_layers_per_optimizer_and_with_hierarchy():
    import torch
    from mmengine.optim import OptimWrapper, OptimWrapperDict

    from mmlr.hooks import LayerLrLoggerHook

    def wrapper(lrs: dict):
        groups = [dict(params=[nn.Parameter(torch.zeros(1))], lr=lr,
                       layer_id=layer) for layer, lr in lrs]
        return OptimWrapper(torch.optim.SGD(groups, lr=1.0))

    # two groups of layer 1: the first (at the layer's plain lr) is logged
    wrappers = OptimWrapperDict(
        gen=wrapper([(1, 0.4), (1, 4.0), (0, 0.2)]),
        disc=wrapper([(0, 0.1)]))
    runner = fake_runner(wrappers, hierarchy=True)
    run_iterations(LayerLrLoggerHook(), runner, 5)
    # LoggerHook's rule: iterations 2 and 4 of 5 (ignore_last drops the 5th)
    assert [(step, path) for step, _, path in runner.visualizer.calls] == [
        (2, 'run.json'), (4, 'run.json')]
    # the lrs the iteration trained with, before the scheduler halved them
    assert runner.visualizer.calls[0][1] == {
        'train/gen.lr_layer_0': 0.2 / 2, 'train/gen.lr_layer_1': 0.4 / 2,
        'train/disc.lr_layer_0': 0.1 / 2, 'iter': 2}


def test_hook_without_layer_ids_records_nothing_and_says_so(monkeypatch):
    import torch
    from mmengine.optim import OptimWrapper

    import mmlr.hooks.layer_lr_logger as hook_module
    from mmlr.hooks import LayerLrLoggerHook
    said = []
    monkeypatch.setattr(hook_module, 'print_log',
                        lambda msg, **kw: said.append(msg))
    plain = OptimWrapper(torch.optim.SGD([nn.Parameter(torch.zeros(1))],
                                         lr=0.1))
    runner = fake_runner(plain, hierarchy=False)
    run_iterations(LayerLrLoggerHook(), runner, 5)
    assert runner.visualizer.calls == []
    assert len(said) == 1 and 'no optimizer group carries a layer_id' in \
        said[0]
