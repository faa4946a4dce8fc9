"""Resuming with a changed optimizer config: the groups follow the config,
the moments stay with their tensors (OptimizerResumeHook, in-process)."""
import itertools
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook

from conftest import wait_for_a_new_second
from mmlr.hooks.optimizer_layout import remap_by_name, shape_mismatches
from mmlr.launch import build_runner, prepare_config

LAYER_DECAY = 'configs/vit_digits_layer_decay.py'
LAYER_DECAY_ITER = 'tests/configs/layer_decay_iter.py'
# 96 training images in batches of 16: 6 short iterations an epoch
TINY = {
    'train_dataloader.batch_size': 16,
    'train_dataloader.dataset.indices': list(range(96)),
    'val_dataloader.dataset.indices': list(range(40)),
}
SHORT = {
    **TINY,
    'train_cfg.max_epochs': 4,
    'default_hooks.checkpoint.interval': 1,
    'default_hooks.checkpoint.max_keep_ckpts': -1,
}
MMLR_BY_EPOCH = [
    dict(type='mmlr.LinearLR', start_lr=1e-5, end=1, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='LinearDecayLR', end_factor=0.01, begin=1, by_epoch=True),
]
MMLR_BY_ITER = [
    dict(type='mmlr.LinearLR', start_lr=1e-5, end=6, by_epoch=False),
    dict(type='LinearDecayLR', end_factor=0.01, begin=6, by_epoch=False),
]
# (config, options, checkpoint of the middle of the run)
RUNS = {
    ('epoch', 'mmengine'): (LAYER_DECAY, SHORT, 'epoch_2.pth'),
    ('epoch', 'mmlr'): (LAYER_DECAY, {**SHORT, 'param_scheduler':
                                      MMLR_BY_EPOCH}, 'epoch_2.pth'),
    ('iter', 'mmengine'): (LAYER_DECAY_ITER, TINY, 'iter_12.pth'),
    ('iter', 'mmlr'): (LAYER_DECAY_ITER, {**TINY, 'param_scheduler':
                                          MMLR_BY_ITER},
                       'iter_12.pth'),
}
NEW_LR = {'optim_wrapper.optimizer.lr': 1e-3}
NEW_RATE = {'optim_wrapper.paramwise_cfg.layer_decay_rate': 0.5}
_names = itertools.count()


class Recorder(Hook):
    """Every group's lr and weight decay at every iteration, and the
    optimizer state (by parameter name) when training starts."""

    priority = 'LOWEST'

    def __init__(self):
        self.values: dict = {}
        self.state: dict = {}

    def before_train(self, runner) -> None:
        optimizer = runner.optim_wrapper.optimizer
        names = {id(p): n for n, p in runner.model.named_parameters()}
        self.state = {
            names[id(p)]: {k: v.clone() for k, v in optimizer.state[p].items()}
            for g in optimizer.param_groups for p in g['params']
            if p in optimizer.state
        }

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.values[runner.iter] = [
            g[key] for g in runner.optim_wrapper.param_groups
            for key in ('lr', 'weight_decay')
        ]


def train(config: str, work_dir: Path, options: dict, resume=None):
    cfg = prepare_config(config, work_dir=str(work_dir), resume=resume,
                         cfg_options=options)
    cfg.experiment_name = f'resume_optimizer_{next(_names)}'
    wait_for_a_new_second(work_dir)
    runner = build_runner(cfg)
    recorder = Recorder()
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder


def log_text(runner) -> str:
    return (Path(runner.log_dir) / f'{runner.timestamp}.log').read_text()


@pytest.fixture(scope='module')
def original(tmp_path_factory):
    """Each (loop, schedulers) config trained once, uninterrupted."""
    cache = {}

    def get(kind):
        if kind not in cache:
            config, options, checkpoint = RUNS[kind]
            work_dir = tmp_path_factory.mktemp('_'.join(kind))
            runner, recorder = train(config, work_dir, options)
            names = [[n for n, p in runner.model.named_parameters()
                      if any(p is q for q in g['params'])]
                     for g in runner.optim_wrapper.param_groups]
            cache[kind] = (recorder.values, work_dir / checkpoint, names)
        return cache[kind]

    return get


def assert_same_values(resumed: dict, fresh: dict) -> None:
    assert resumed, 'the resumed run trained no iteration'
    for it, groups in resumed.items():
        assert groups == pytest.approx(fresh[it], rel=1e-12, abs=0), it


# both loops, both scheduler families, both settings
CASES = [(('epoch', 'mmengine'), NEW_LR), (('epoch', 'mmengine'), NEW_RATE),
         (('epoch', 'mmlr'), NEW_LR), (('iter', 'mmengine'), NEW_LR),
         (('iter', 'mmlr'), NEW_RATE)]


@pytest.mark.parametrize(
    'kind, change', CASES,
    ids=['-'.join(k) + ('-lr' if c is NEW_LR else '-rate') for k, c in CASES])
def test_resumed_groups_equal_an_uninterrupted_run_of_the_new_config(
        tmp_path, original, kind, change):
    # the config's model, training data and schedules; only the optimizer
    # setting differs from the run that wrote the checkpoint
    config, options, checkpoint = RUNS[kind]
    old_values, path, _ = original(kind)
    _, fresh = train(config, tmp_path / 'fresh', {**options, **change})
    runner, resumed = train(config, tmp_path / 'resumed',
                            {**options, **change}, resume=str(path))
    assert_same_values(resumed.values, fresh.values)
    # without the hook (mmengine) the resumed run kept the checkpoint's lrs
    first = min(resumed.values)
    assert resumed.values[first] != pytest.approx(old_values[first])


def test_moments_stay_on_their_tensors_and_each_change_is_logged_once(
        tmp_path, original):
    config, options, checkpoint = RUNS[('epoch', 'mmengine')]
    old_values, path, names = original(('epoch', 'mmengine'))
    runner, resumed = train(config, tmp_path, {**options, **NEW_RATE},
                            resume=str(path))
    # The checkpoint numbers each group's tensors in order (torch's
    # state_dict), so index k is the k-th name of the original groups.
    saved = torch.load(path, weights_only=True)['optimizer']['state']
    by_name = dict(zip(itertools.chain(*names), range(10**6)))
    assert set(resumed.state) == set(by_name)
    for name, state in resumed.state.items():
        assert torch.equal(state['exp_avg'], saved[by_name[name]]['exp_avg'])
        assert torch.equal(state['exp_avg_sq'],
                           saved[by_name[name]]['exp_avg_sq'])
    log = log_text(runner)
    assert log.count(
        'optim_wrapper.paramwise_cfg.layer_decay_rate 0.75 -> 0.5') == 1
    # layer ids 0..4 (10 groups) are scaled by rate ** (5 - id); the head's
    # two groups (id 5, scale 1) keep their lr, so the example is group 2
    # (layer 4): its lr at the resumed iteration 12 (epoch_2.pth, 6
    # iterations an epoch) in the uninterrupted run, and in this one.
    first = min(resumed.values)
    assert first == 12
    old, new = old_values[first], resumed.values[first]
    assert old[0] == new[0] and old[4] != new[4]  # values: lr, wd per group
    line = ("following the config, optim_wrapper.paramwise_cfg."
            "layer_decay_rate 0.75 -> 0.5: 10 groups' lr changed "
            f"(group 2 lr {old[4]:.4g} -> {new[4]:.4g})")
    assert line in log, log[-3000:]


def test_settings_from_checkpoint_keeps_mmengines_behaviour(tmp_path,
                                                            original):
    config, options, _ = RUNS[('epoch', 'mmengine')]
    old_values, path, _ = original(('epoch', 'mmengine'))
    keep = {'custom_hooks': [dict(type='mmlr.OptimizerResumeHook',
                                  settings_from='checkpoint')]}
    runner, resumed = train(config, tmp_path, {**options, **NEW_LR, **keep},
                            resume=str(path))
    assert_same_values(resumed.values, old_values)
    assert "keeping the checkpoint's values" in log_text(runner)


def test_changed_freeze_moves_the_state_by_name(tmp_path, original):
    config, options, _ = RUNS[('epoch', 'mmengine')]
    _, path, names = original(('epoch', 'mmengine'))
    frozen = {'optim_wrapper.paramwise_cfg.freeze': ['backbone.blocks.0']}
    runner, resumed = train(config, tmp_path, {**options, **frozen},
                            resume=str(path))
    saved = torch.load(path, weights_only=True)['optimizer']['state']
    by_name = dict(zip(itertools.chain(*names), range(10**6)))
    # block 0's 12 tensors left the optimizer; all others keep their moments
    assert len(resumed.state) == len(by_name) - 12
    assert not any(n.startswith('backbone.blocks.0.') for n in resumed.state)
    for name, state in resumed.state.items():
        assert torch.equal(state['exp_avg'], saved[by_name[name]]['exp_avg'])
    assert '12 no longer optimized' in log_text(runner)


BLOCK_0 = 'backbone.blocks.0.'


@pytest.fixture(scope='module')
def frozen_keeping_values(tmp_path_factory, original):
    """The original epoch-2 checkpoint resumed with block 0 frozen, a new
    lr and settings_from='checkpoint' (2 epochs, checkpoints with names)."""
    config, options, _ = RUNS[('epoch', 'mmengine')]
    _, path, _ = original(('epoch', 'mmengine'))
    keep = {'custom_hooks': [dict(type='mmlr.OptimizerResumeHook',
                                  settings_from='checkpoint')],
            'optim_wrapper.paramwise_cfg.freeze': [BLOCK_0[:-1]]}
    work_dir = tmp_path_factory.mktemp('frozen_keeping_values')
    runner, resumed = train(config, work_dir, {**options, **NEW_LR, **keep},
                            resume=str(path))
    return runner, resumed, work_dir


def test_settings_from_checkpoint_still_moves_the_state_by_name(
        original, frozen_keeping_values):
    old_values, path, names = original(('epoch', 'mmengine'))
    runner, resumed, _ = frozen_keeping_values
    saved = torch.load(path, weights_only=True)['optimizer']['state']
    by_name = dict(zip(itertools.chain(*names), range(10**6)))
    # block 0's 12 tensors (its 2 groups) left; the others keep their
    # moments, found by name although the group indices shifted
    assert len(resumed.state) == len(by_name) - 12
    assert not any(n.startswith(BLOCK_0) for n in resumed.state)
    for name, state in resumed.state.items():
        assert torch.equal(state['exp_avg'], saved[by_name[name]]['exp_avg'])
    log = log_text(runner)
    assert '12 no longer optimized (e.g. backbone.blocks.0.' in log
    assert "keeping the checkpoint's values" in log
    # and the other groups train on with the checkpoint's lr and weight
    # decay (the uninterrupted run's), not those of the new lr
    kept = [i for i, g in enumerate(names)
            if not (g and all(n.startswith(BLOCK_0) for n in g))]
    assert len(kept) == len(names) - 2 and min(resumed.values) == 12
    for it, values in resumed.values.items():
        expected = [old_values[it][2 * i + k] for i in kept for k in (0, 1)]
        assert values == pytest.approx(expected, rel=1e-12, abs=0), it


def test_parameters_new_to_the_optimizer_start_without_state(
        tmp_path, original, frozen_keeping_values):
    # Resume the frozen run's epoch-3 checkpoint with the original config:
    # block 0 trains again, its 12 tensors are new to the optimizer.
    config, options, _ = RUNS[('epoch', 'mmengine')]
    _, _, names = original(('epoch', 'mmengine'))
    _, _, frozen_dir = frozen_keeping_values
    path = frozen_dir / 'epoch_3.pth'
    runner, resumed = train(config, tmp_path, options, resume=str(path))
    all_names = list(itertools.chain(*names))
    new = [n for n in all_names if n.startswith(BLOCK_0)]
    assert len(new) == 12
    # at the start of training: the others hold the checkpoint's moments,
    # block 0's tensors no state at all
    saved_names = torch.load(path, weights_only=True)[
        'optimizer_param_names']['']
    saved = torch.load(path, weights_only=True)['optimizer']['state']
    by_name = dict(zip(itertools.chain(*saved_names), range(10**6)))
    assert set(resumed.state) == set(all_names) - set(new)
    for name, state in resumed.state.items():
        assert torch.equal(state['exp_avg'], saved[by_name[name]]['exp_avg'])
    # groups are built top layer first, so the first new name is the first
    # block-0 name in the config's group order
    line = ("Resume: the optimizer groups hold other tensors than the "
            "checkpoint's (10 groups then, 12 now); moved the state of "
            f"{len(all_names) - 12} parameters by name, 12 new without state "
            f"(e.g. {new[0]})")
    assert line in log_text(runner)


def test_changed_freeze_without_names_in_the_checkpoint_is_refused(
        tmp_path, original):
    config, options, _ = RUNS[('epoch', 'mmengine')]
    _, path, _ = original(('epoch', 'mmengine'))
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint['optimizer_param_names']  # as written before the hook
    old = tmp_path / 'old.pth'
    torch.save(checkpoint, old)
    frozen = {'optim_wrapper.paramwise_cfg.freeze': ['backbone.blocks.0']}
    with pytest.raises(ValueError, match=r'group 2 holds 8 tensors in the '
                       r'checkpoint, 0 in the config|hold other tensors'):
        train(config, tmp_path / 'run', {**options, **frozen},
              resume=str(old))


def test_state_of_other_shapes_is_found_without_names():
    # Same group sizes, tensors swapped: torch would load the moments of a
    # (3, 2) weight into a (2, 3) one without a word.
    a, b = torch.zeros(3, 2), torch.zeros(2, 3)
    state = {0: {'exp_avg': torch.ones(3, 2), 'step': torch.tensor(1.)}}
    groups = [{'params': [0]}, {'params': [1]}]
    assert shape_mismatches(state, groups, [[b], [a]]) == [
        "group 0: state 'exp_avg' of shape (3, 2) for a tensor of shape "
        '(2, 3)'
    ]
    assert shape_mismatches(state, groups, [[a], [b]]) == []
    assert 'optimizer groups' in shape_mismatches(state, groups, [[a]])[0]


def test_bad_settings_from_is_refused_when_built():
    from mmlr.hooks import OptimizerResumeHook
    with pytest.raises(ValueError, match="settings_from must be one of"):
        OptimizerResumeHook(settings_from='ckpt')


def test_mmengine_schedulers_follow_a_longer_run_too(tmp_path, original):
    # max_epochs 4 -> 6: CosineAnnealingLR's default end (and T_max) grows;
    # mmengine would restore end=4 and hold eta_min from epoch 4 on.
    config, options, _ = RUNS[('epoch', 'mmengine')]
    _, path, _ = original(('epoch', 'mmengine'))
    longer = {**options, 'train_cfg.max_epochs': 6}
    _, fresh = train(config, tmp_path / 'fresh', longer)
    runner, resumed = train(config, tmp_path / 'resumed', longer,
                            resume=str(path))
    assert_same_values(resumed.values, fresh.values)
    assert 'train_cfg.max_epochs 4 -> 6' in log_text(runner)


def test_plateau_schedule_with_changed_values_is_refused(tmp_path):
    options = {**TINY, 'train_cfg.max_epochs': 2,
               'default_hooks.checkpoint.interval': 1}
    train('configs/vit_digits_plateau.py', tmp_path / 'part', options)
    path = str(tmp_path / 'part' / 'epoch_1.pth')
    with pytest.raises(ValueError, match='depend on past metrics'):
        train('configs/vit_digits_plateau.py', tmp_path / 'refused',
              {**options, **NEW_LR}, resume=path)
    keep = {'custom_hooks': [dict(type='mmlr.OptimizerResumeHook',
                                  settings_from='checkpoint')]}
    runner, resumed = train('configs/vit_digits_plateau.py',
                            tmp_path / 'kept', {**options, **NEW_LR, **keep},
                            resume=path)
    # epoch 1 trains with the checkpoint's lr: 2e-3 once the one-epoch
    # warm-up is over and before any reduction (patience 2), not 1e-3
    assert resumed.values[6][0] == pytest.approx(2e-3, rel=1e-12)


def test_reordered_groups_move_state_and_values_by_name():
    # The checkpoint held [embed] then [head, head.bias]; the config now
    # builds the head's group first. Torch would pair group 0 with group 0.
    embed, head, bias = torch.zeros(4), torch.zeros(2, 2), torch.zeros(2)
    saved = {
        'state': {0: {'exp_avg': torch.full((4,), 1.)},
                  1: {'exp_avg': torch.full((2, 2), 2.)},
                  2: {'exp_avg': torch.full((2,), 3.)}},
        'param_groups': [{'lr': 0.1, 'params': [0]},
                         {'lr': 1.0, 'params': [1, 2]}],
    }
    remapped, report = remap_by_name(
        saved, [['embed'], ['head', 'head.bias']],
        [['head', 'head.bias'], ['embed']], [[head, bias], [embed]])
    assert [g['lr'] for g in remapped['param_groups']] == [1.0, 0.1]
    # new indices count through the new groups: head 0, head.bias 1, embed 2
    assert [float(remapped['state'][i]['exp_avg'].flatten()[0])
            for i in range(3)] == [2., 3., 1.]
    assert report == {'new': [], 'dropped': [], 'mixed': []}
    # a state that does not fit the tensor now holding the name is refused
    with pytest.raises(ValueError, match=r"'exp_avg' of head has shape"):
        remap_by_name(saved, [['embed'], ['head', 'head.bias']],
                      [['head', 'head.bias'], ['embed']],
                      [[torch.zeros(4), bias], [embed]])
