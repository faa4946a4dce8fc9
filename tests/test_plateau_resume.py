"""Resuming a ReduceLR on a validation metric through a plain mmengine
Runner, as mmpretrain's and mmdet's own tools/train.py do (no mmlr tool).

mmengine writes a checkpoint just before the validation of its epoch
(iteration). With ``SchedulerCheckHook`` that validation runs again on
resume and the lrs are the uninterrupted run's; without it one plateau check
is lost, and ReduceLR says so in one warning, only when a validation was due
right after the checkpoint.

The plateau settings make the expected lrs independent of training: with
``threshold_mode='abs', threshold=1000`` no accuracy (a percentage) ever
beats the best by 1000 points, so the first check sets the best and, with
``patience=0``, every later check halves the lr.
"""
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner

from conftest import wait_for_a_new_second
from mmlr.schedulers import ReduceLR
from mmlr.schedulers.resume_validation import (iteration_before_validation,
                                               loop_validates_after)

REPO = Path(__file__).resolve().parents[1]
BASE_LR = 2e-3
EPOCH = 3  # iterations per epoch: 96 training images in batches of 32
HOOK = [dict(type='mmlr.SchedulerCheckHook')]
FIX = "add dict(type='mmlr.SchedulerCheckHook') to the config's custom_hooks"


def train(config: str, work_dir: Path, *, hook: bool, resume_from=None,
          **options) -> tuple[dict, list]:
    """Build and train a Runner as mmpretrain's tools/train.py does; the lr
    of every 0-based iteration it trained, and its log's WARNING lines."""
    cfg = Config.fromfile(REPO / config)
    cfg.merge_from_dict({
        'work_dir': str(work_dir),
        'experiment_name': f'plateau-resume-{uuid.uuid4().hex}',
        'train_dataloader.dataset.indices': slice(0, 3 * 32),
        'val_dataloader.dataset.indices': slice(0, 64),
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'param_scheduler.1.patience': 0,
        'param_scheduler.1.threshold_mode': 'abs',
        'param_scheduler.1.threshold': 1000.0,
        'custom_hooks': HOOK if hook else [],
        'resume': resume_from is not None,
        'load_from': None if resume_from is None else str(resume_from),
        **options,
    })
    wait_for_a_new_second(work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    log_dir = Path(runner.log_dir)
    with open(log_dir / 'vis_data' / 'scalars.json') as f:
        records = [json.loads(line) for line in f if line.strip()]
    lrs = {r['iter'] - 1: r['lr'] for r in records if 'loss' in r}
    warnings = [line for line in
                (log_dir / f'{runner.timestamp}.log').read_text().splitlines()
                if ' - WARNING - ' in line and 'ReduceLR' in line]
    return lrs, warnings


@pytest.fixture(scope='module')
def epoch_checkpoints(tmp_path_factory):
    """Two epochs validated after each (val_interval=1)."""
    work_dir = tmp_path_factory.mktemp('part')
    train('configs/vit_digits_plateau.py', work_dir, hook=False,
          **{'train_cfg.max_epochs': 2})
    return work_dir


def test_plain_runner_resume_warns_once_without_the_hook_and_is_exact_with_it(
        epoch_checkpoints, tmp_path):
    # Uninterrupted: the check after epoch 1 sets the best, the checks after
    # epochs 2 and 3 halve: epochs (0-based) 2 and 3 train at 1e-3, 5e-4.
    # epoch_2.pth is written before the validation after epoch 2.
    options = {'train_cfg.max_epochs': 4}
    with_hook, warnings = train(
        'configs/vit_digits_plateau.py', tmp_path / 'hook', hook=True,
        resume_from=epoch_checkpoints / 'epoch_2.pth', **options)
    assert warnings == []
    assert [with_hook[EPOCH * e + i] for e in (2, 3) for i in range(EPOCH)] \
        == pytest.approx([BASE_LR / 2] * EPOCH + [BASE_LR / 4] * EPOCH)

    # Without the hook the check after epoch 2 is lost: epoch 2 keeps 2e-3,
    # the check after it halves once (the "2e-3 and 1e-3").
    without, warnings = train(
        'configs/vit_digits_plateau.py', tmp_path / 'plain', hook=False,
        resume_from=epoch_checkpoints / 'epoch_2.pth', **options)
    assert [without[EPOCH * e] for e in (2, 3)] == pytest.approx(
        [BASE_LR, BASE_LR / 2])
    assert len(warnings) == 1
    assert 'checkpoint of epoch 2 was written before the validation' in \
        warnings[0]
    assert "'accuracy/top1'" in warnings[0]
    assert 'one validation later' in warnings[0] and FIX in warnings[0]


def test_the_hook_finds_a_plateau_schedule_inside_group_select(tmp_path):
    # ReduceLR moving group 0 only, through GroupSelect: the hook must see
    # the plateau inside the wrapper and run the validation epoch_2.pth
    # preceded, as for a bare ReduceLR (the same numbers as the test above).
    wrapped = {'param_scheduler.1.type': 'GroupSelect',
               'param_scheduler.1.groups': dict(indices=[0]),
               'param_scheduler.1.scheduler': 'ReduceLR'}
    part = tmp_path / 'part'
    train('configs/vit_digits_plateau.py', part, hook=True, **wrapped,
          **{'train_cfg.max_epochs': 2})
    lrs, warnings = train(
        'configs/vit_digits_plateau.py', tmp_path / 'resumed', hook=True,
        resume_from=part / 'epoch_2.pth', **wrapped,
        **{'train_cfg.max_epochs': 4})
    assert warnings == []
    assert [lrs[EPOCH * e + i] for e in (2, 3) for i in range(EPOCH)] \
        == pytest.approx([BASE_LR / 2] * EPOCH + [BASE_LR / 4] * EPOCH)


def test_warns_only_when_the_checkpoint_precedes_a_validation(tmp_path):
    # val_interval=2: the loop validates after epoch 2, not after epoch 1
    part = tmp_path / 'part'
    options = {'train_cfg.val_interval': 2}
    train('configs/vit_digits_plateau.py', part, hook=False,
          **options, **{'train_cfg.max_epochs': 2})
    lrs, warnings = train(
        'configs/vit_digits_plateau.py', tmp_path / 'from1', hook=False,
        resume_from=part / 'epoch_1.pth', **options,
        **{'train_cfg.max_epochs': 4})
    assert warnings == []
    # nothing was lost: the check after epoch 2 sets the best, so all
    # epochs up to the check after epoch 4 train at the full lr
    assert [lrs[t] for t in range(EPOCH, 4 * EPOCH)] == pytest.approx(
        [BASE_LR] * 3 * EPOCH)
    _, warnings = train(
        'configs/vit_digits_plateau.py', tmp_path / 'from2', hook=False,
        resume_from=part / 'epoch_2.pth', **options,
        **{'train_cfg.max_epochs': 3})
    assert len(warnings) == 1 and 'checkpoint of epoch 2' in warnings[0]


def test_iteration_loop_follows_dynamic_intervals(tmp_path):
    # val_interval=5, from iteration 8 on every 4 (mmengine picks the
    # interval of the last milestone <= done + 1): validations after
    # iterations 5, 8, 12, 16. Checkpoints every 3 iterations.
    # Uninterrupted: 5 sets the best, 8 and 12 halve: iterations 12-15
    # train at 5e-4.
    config = 'tests/configs/plateau_iter.py'
    options = {'train_cfg.val_interval': 5,
               'train_cfg.dynamic_intervals': [(8, 4)],
               'default_hooks.checkpoint.interval': 3,
               # mmengine sleeps 2 s before each new pass of a finite sampler
               'train_dataloader.sampler.type': 'InfiniteSampler'}
    part = tmp_path / 'part'
    train(config, part, hook=False, **options, **{'train_cfg.max_iters': 12})

    # iter_6.pth: written after the validation of iteration 5, before no
    # validation: nothing lost
    _, warnings = train(config, tmp_path / 'from6', hook=False,
                        resume_from=part / 'iter_6.pth', **options,
                        **{'train_cfg.max_iters': 7})
    assert warnings == []

    # iter_12.pth: written before the validation after iteration 12, which
    # only dynamic_intervals makes due (12 % 5 != 0)
    lrs, warnings = train(config, tmp_path / 'hook', hook=True,
                          resume_from=part / 'iter_12.pth', **options,
                          **{'train_cfg.max_iters': 16})
    assert warnings == []
    assert [lrs[t] for t in range(12, 16)] == pytest.approx(
        [BASE_LR / 4] * 4)
    _, warnings = train(config, tmp_path / 'plain', hook=False,
                        resume_from=part / 'iter_12.pth', **options,
                        **{'train_cfg.max_iters': 13})
    assert len(warnings) == 1
    assert 'checkpoint of iteration 12 was written before' in warnings[0]


class LoopRunner:
    """Just enough of a Runner for mmengine's train loops to run: no model,
    hooks do nothing, and validations are recorded (the loop's epoch or
    iteration count when it validates)."""

    def __init__(self):
        self.visualizer = SimpleNamespace()
        self.model = SimpleNamespace(train=lambda: None,
                                     train_step=lambda *args, **kwargs: {})
        self.optim_wrapper = None
        self.validated = []
        self.val_loop = SimpleNamespace(run=self._record)
        self.train_loop = None

    def call_hook(self, *args, **kwargs) -> None:
        pass

    def _record(self) -> None:
        loop = self.train_loop
        self.validated.append(loop.epoch if isinstance(
            loop, EpochBasedTrainLoop) else loop.iter)


class Batches(torch.utils.data.Dataset):
    metainfo: dict = {}

    def __init__(self, length: int):
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> int:
        return index


def loop_of(kind: str, **kwargs):
    runner = LoopRunner()
    # batches of one: 3 iterations per epoch; an iteration loop gets all its
    # batches in one pass (mmengine sleeps 2 s before each new pass)
    length = 3 if kind == 'epoch' else kwargs['max_iters']
    loader = torch.utils.data.DataLoader(Batches(length), batch_size=1)
    loop_type = EpochBasedTrainLoop if kind == 'epoch' else IterBasedTrainLoop
    runner.train_loop = loop_type(runner, loader, **kwargs)
    return runner, runner.train_loop


LOOPS = [
    ('epoch', dict(max_epochs=8)),
    ('epoch', dict(max_epochs=8, val_interval=2)),
    ('epoch', dict(max_epochs=9, val_begin=3, val_interval=2)),
    ('epoch', dict(max_epochs=12, val_interval=2, dynamic_intervals=[(4, 3)])),
    ('iter', dict(max_iters=20, val_interval=5, dynamic_intervals=[(8, 4)])),
    ('iter', dict(max_iters=30, val_begin=7, val_interval=4,
                  dynamic_intervals=[(10, 3), (20, 7)])),
]


@pytest.mark.parametrize('kind, kwargs', LOOPS)
def test_validation_rule_is_mmengines_loop(kind, kwargs):
    # the reference: where mmengine's own loop runs its validation
    runner, loop = loop_of(kind, **kwargs)
    loop.run()
    last = loop.max_epochs if kind == 'epoch' else loop.max_iters
    _, fresh = loop_of(kind, **kwargs)
    assert [done for done in range(1, last + 1)
            if loop_validates_after(fresh, done)] == runner.validated


@pytest.mark.parametrize('epoch, iteration, expected', [
    (2, 6, 5),  # written at the end of epoch 2, validated after it
    (2, 7, None),  # mid-epoch 3: epoch 2's validation ran before
    (0, 0, None),  # nothing trained
    (8, 24, None),  # training complete: nothing follows
])
def test_checkpoint_before_a_validation_in_an_epoch_loop(epoch, iteration,
                                                         expected):
    runner, loop = loop_of('epoch', max_epochs=8)
    loop._epoch, loop._iter = epoch, iteration  # as Runner.resume sets them
    assert iteration_before_validation(runner) == expected
    runner.val_loop = None  # a run without validation misses none
    assert iteration_before_validation(runner) is None


def sgd() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def test_missed_validation_needs_a_check_the_state_lacks():
    runner, loop = loop_of('epoch', max_epochs=8)
    loop._epoch, loop._iter = 2, 6

    def plateau(**kwargs):
        scheduler = ReduceLR(sgd(), monitor='accuracy/top1', **kwargs)
        scheduler._global_step = 2  # stepped after epochs 1 and 2
        return scheduler

    assert plateau().missed_validation(runner)
    checked = plateau()
    checked.last_metric_iter = 5  # written after that validation
    assert not checked.missed_validation(runner)
    # the check after epoch 2 lies outside [begin, end): nothing to lose
    assert not plateau(begin=3).missed_validation(runner)
    assert not plateau(end=1).missed_validation(runner)
    # a training scalar is checked at the epoch's end, before the save
    assert not ReduceLR(sgd(), monitor='train/loss').missed_validation(
        runner)
