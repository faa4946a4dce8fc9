"""Layer decay with DeepSpeed ZeRO through mmengine's FlexibleRunner.

The end-to-end run trains the digits ViT with ``tools/dist_train.sh`` on 2
CPU processes for 2 epochs (ZeRO stage 2, as the example config), then
resumes to 3, and reads back what DeepSpeed itself recorded: each rank's
share of every optimizer group, by parameter name, with the group's
settings. The bad-input tests need no DeepSpeed.
"""
import glob
import math
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

from conftest import (REPO, read_scalars, tool_main, train_in_process,
                      user_error_line)
from mmlr.optim import LayerDecayOptimWrapperConstructor

CONFIG = 'configs/vit_digits_layer_decay_deepspeed.py'
# 256 training images: 4 batches of 32 an epoch on each of the 2 ranks
# (FlexibleRunner has no num_batch_per_epoch).
ITERS_PER_EPOCH = 4
FREEZE = ['backbone.patch_embed']
# The cosine's end is pinned so the 2-epoch run and its resume schedule the
# same curve: epoch e = 2, 3, 4 (counted from 1, after one epoch of warm-up)
# runs at eta_min + (lr0 - eta_min) * COSINE[e].
SHORT = [
    'train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1', 'param_scheduler.1.end=4',
    f'optim_wrapper.paramwise_cfg.freeze={FREEZE}',
    f'train_dataloader.dataset.indices={list(range(256))}'.replace(' ', '')
]
ETA_MIN = 1e-5
COSINE = {e: (1 + math.cos(math.pi * (e - 2) / 3)) / 2 for e in range(2, 5)}


def single_process_settings() -> dict:
    """{parameter name: (lr, weight decay)} of the config's optimizer as
    the constructor builds it in one process, on the unwrapped model."""
    cfg = Config.fromfile(REPO / CONFIG)
    cfg.merge_from_dict({'optim_wrapper.paramwise_cfg.freeze': FREEZE})
    model = MODELS.build(cfg.model)
    optim_cfg = {k: v for k, v in cfg.optim_wrapper.items()
                 if k in ('optimizer', )}
    constructor = LayerDecayOptimWrapperConstructor(
        optim_cfg, cfg.optim_wrapper.paramwise_cfg)
    optimizer = constructor(model).optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g['lr'], g['weight_decay'])
            for g in optimizer.param_groups for p in g['params']}


def deepspeed_groups(checkpoint_dir) -> tuple[dict, list]:
    """From DeepSpeed's ZeRO files (loaded with ``weights_only=True``):
    {parameter name: its group's settings} over all ranks' partitions, and
    the AdamW step counts of every rank's flat partitions."""
    from mmlr.deepspeed_strategy import load_weights_only
    files = sorted(
        glob.glob(f'{checkpoint_dir}/zero_pp_rank_*_optim_states.pt'))
    assert len(files) == 2  # one partition per rank
    settings, steps = {}, []
    for path in files:
        zero = load_weights_only(path, 'cpu')['optimizer_state_dict']
        base = zero['base_optimizer_state']
        # DeepSpeed's own record of which parameters each group holds
        for group, names in zip(base['param_groups'],
                                zero['param_slice_mappings']):
            for name in names:
                settings.setdefault(name, []).append(
                    {k: group[k] for k in ('lr', 'initial_lr',
                                           'weight_decay', 'lr_scale')})
        steps += [int(s['step']) for s in base['state'].values()]
    return settings, steps


def test_deepspeed_zero2_trains_checkpoints_and_resumes_with_layer_decay(
        tmp_path):
    pytest.importorskip('deepspeed')
    from test_distributed import run_dist
    expected = single_process_settings()

    first = run_dist(CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                     *SHORT)
    assert 'Distributed training: True' in first
    # the ranks' groups, by the model's parameter names (not DeepSpeed's
    # flat partitions): patch_embed's 2 tensors frozen, 54 in 11 groups
    assert ('ParamGroupCheckHook: 11 parameter groups (54 tensors) '
            'identical on all 2 ranks') in first
    assert f'Epoch(train) [2][{ITERS_PER_EPOCH}/{ITERS_PER_EPOCH}]' in first
    # without a GPU, DeepSpeed's shared-memory collectives (a C++ extension
    # compiled at the first start) are left out
    assert 'deepspeed_shm_comm' not in first
    assert glob.glob(f'{tmp_path}/epoch_2.pth/*_optim_states.pt')

    resumed = run_dist(CONFIG, '--work-dir', str(tmp_path), '--resume',
                       '--cfg-options', *SHORT, 'train_cfg.max_epochs=3')
    assert 'resumed epoch: 2' in resumed
    assert f'Epoch(train) [3][{ITERS_PER_EPOCH}/{ITERS_PER_EPOCH}]' in resumed
    assert 'Final validation: accuracy/top1' in resumed

    from mmlr.deepspeed_strategy import load_weights_only
    from mmlr.hooks.optimizer_resume import NAMES_KEY
    client = load_weights_only(
        str(tmp_path / 'epoch_3.pth' / 'mp_rank_00_model_states.pt'), 'cpu')
    # OptimizerResumeHook's before_save_checkpoint ran: the model's names
    # of every group's tensors
    stored = client[NAMES_KEY]['']
    assert len(stored) == 11
    assert sorted(n for names in stored for n in names) == sorted(expected)

    settings, steps = deepspeed_groups(tmp_path / 'epoch_3.pth')
    # Every parameter the single-process build trains is in DeepSpeed's
    # groups, with that build's lr and weight decay (parameters split
    # across the two partitions appear in both, with equal settings).
    assert settings.keys() == expected.keys()
    for name, (lr, weight_decay) in expected.items():
        for group in settings[name]:
            assert group['initial_lr'] == pytest.approx(lr, rel=1e-12), name
            assert group['weight_decay'] == weight_decay, name
            # the checkpoint holds the lr for the epoch after the 3rd, as
            # an uninterrupted run's cosine gives it
            assert group['lr'] == pytest.approx(
                ETA_MIN + (lr - ETA_MIN) * COSINE[4]), name
    assert len({g['lr_scale'] for gs in settings.values()
                for g in gs}) == 6  # 0.75 ** 0..5
    # AdamW counted the steps of all 3 epochs: the resume loaded the state
    assert set(steps) == {3 * ITERS_PER_EPOCH}

    # The resumed epoch ran every layer at the schedule's lr for epoch 3,
    # not at a restarted warm-up (LayerLrLoggerHook's lr_layer_<id>).
    epoch_3 = [r for r in read_scalars(tmp_path)
               if 'lr_layer_0' in r and r['epoch'] == 3]
    assert len(epoch_3) == ITERS_PER_EPOCH
    for record in epoch_3:
        for layer in range(6):
            top = 2e-3 * 0.75**(5 - layer)
            assert record[f'lr_layer_{layer}'] == pytest.approx(
                ETA_MIN + (top - ETA_MIN) * COSINE[3]), layer


class PlantedCode:
    """Pickles as a call of ``os.mkdir``: loading it runs that call."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path, )


@pytest.fixture
def deepspeed_world_of_one(gloo_world_of_one, monkeypatch):
    """One process as torchrun starts it, in a gloo group of one.

    DeepSpeed keeps a copy of the world group for the life of the process;
    an earlier test's world is gone, so its references are dropped first
    (DeepSpeed's own release at a world's teardown), and again after.
    """
    pytest.importorskip('deepspeed')
    from deepspeed.utils import groups
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    groups._release_process_group_references()
    yield
    groups._release_process_group_references()


def test_deepspeed_checkpoint_files_load_as_data_only(tmp_path, capsys,
                                                      deepspeed_world_of_one):
    # DeepSpeed's own loader passes weights_only=False: a checkpoint file
    # holding code would run it on --resume. A one-layer model in a world
    # of one, saved and resumed by the strategy tools/train.py builds.
    from mmlr.deepspeed_strategy import (MmlrDeepSpeedStrategy,
                                         load_weights_only)
    strategy = MmlrDeepSpeedStrategy(
        zero_optimization=dict(stage=2), work_dir=str(tmp_path),
        experiment_name='deepspeed_data_only')
    strategy.prepare(
        torch.nn.Linear(2, 2),
        optim_wrapper=dict(type='DeepSpeedOptimWrapper',
                           optimizer=dict(type='AdamW', lr=1e-3)),
        dispatch_kwargs=dict(train_micro_batch_size_per_gpu=1))
    checkpoint = tmp_path / 'epoch_1.pth'
    strategy.save_checkpoint(str(checkpoint), extra_ckpt={'meta': {}})
    model_states = checkpoint / 'mp_rank_00_model_states.pt'
    state = load_weights_only(str(model_states), 'cpu')  # data only
    assert type(state['ds_config']) is dict  # no mmengine ConfigDict
    marker = tmp_path / 'code_ran'
    state['meta']['planted'] = PlantedCode(str(marker))
    torch.save(state, model_states)

    # when the run resumes (--resume alone: the work dir's latest)
    with pytest.raises(Exception, match='GLOBAL posix.mkdir'):
        strategy.resume(str(checkpoint))
    assert not marker.exists()
    # --resume PATH: checked before anything is built, one line
    line = user_error_line(capsys, tool_main('train'), str(REPO / CONFIG),
                           '--work-dir', str(tmp_path), '--resume',
                           str(checkpoint))
    assert line == (f'error: not a readable checkpoint: {model_states} '
                    '(--resume; it asks for posix.mkdir, which is code, not '
                    'data; nothing of it ran)')
    assert not marker.exists()


@pytest.mark.parametrize('key, kind, where', [
    ('optimizer', 'AdamW', 'optim_wrapper.optimizer'),
    ('scheduler', 'WarmupLR', 'param_scheduler'),
])
def test_a_deepspeed_optimizer_or_scheduler_beside_layer_decay_is_refused(
        capsys, key, kind, where):
    line = user_error_line(capsys, tool_main('train'), str(REPO / CONFIG),
                           '--cfg-options',
                           f'strategy.config.{key}.type={kind}')
    assert line.startswith(f"error: strategy.config sets a DeepSpeed "
                           f"'{key}' ('{kind}'): ")
    assert line.endswith(f"; remove '{key}' from the DeepSpeed config and "
                         f'set it in {where}')
    if key == 'optimizer':  # which one wins
        assert ('DeepSpeed is handed the optimizer mmengine builds from '
                "optim_wrapper (constructor 'LayerDecayOptimWrapperConstructor"
                "') and would silently ignore this one") in line


def test_a_deepspeed_json_config_is_read_for_the_check(capsys, tmp_path):
    config = tmp_path / 'ds.json'
    config.write_text('{"optimizer": {"type": "Adam"}, '
                      '"zero_optimization": {"stage": 1}}')
    line = user_error_line(capsys, tool_main('train'), str(REPO / CONFIG),
                           '--cfg-options', f'strategy.config={config}')
    assert "sets a DeepSpeed 'optimizer' ('Adam')" in line


def test_deepspeed_needs_its_optim_wrapper(capsys):
    line = user_error_line(capsys, tool_main('train'), str(REPO / CONFIG),
                           '--cfg-options', 'optim_wrapper.type=OptimWrapper')
    assert line == (
        "error: optim_wrapper.type is 'OptimWrapper'; DeepSpeedStrategy "
        "steps the optimizer through DeepSpeed's engine and needs "
        "optim_wrapper.type='DeepSpeedOptimWrapper'")


def test_deepspeed_strategy_without_deepspeed_names_the_extra(
        capsys, monkeypatch):
    # mmengine's strategy module holds None where deepspeed did not import;
    # set so here, so that the check runs whether deepspeed is installed.
    import mmengine._strategy.deepspeed as mmengine_deepspeed
    monkeypatch.setattr(mmengine_deepspeed, 'deepspeed', None)
    line = user_error_line(capsys, tool_main('train'), str(REPO / CONFIG))
    assert line == ("error: strategy.type 'DeepSpeedStrategy' needs the "
                    'deepspeed package: pip install mmlr[deepspeed]')


def test_importing_mmlr_drops_deepspeeds_no_gpu_notice(monkeypatch):
    # DeepSpeed warns "Setting accelerator to CPU ..." on its logger each
    # time it detects its accelerator without a GPU; mmlr's filter on that
    # logger drops the notice, and only it.
    import logging

    import mmlr  # noqa: F401
    real_accelerator = pytest.importorskip(
        'deepspeed.accelerator.real_accelerator')
    logger = logging.getLogger('DeepSpeed')
    seen = []

    class Keep(logging.Handler):

        def emit(self, record):
            seen.append(record.getMessage())

    keep = Keep()
    logger.addHandler(keep)
    try:
        for drop_filter in (False, True):
            if drop_filter:  # without mmlr's filter the notice shows
                monkeypatch.setattr(logger, 'filters', [])
            monkeypatch.setattr(real_accelerator, 'ds_accelerator', None)
            monkeypatch.delenv('DS_ACCELERATOR', raising=False)
            real_accelerator.get_accelerator()
            notices = [m for m in seen if 'Setting accelerator to CPU' in m]
            assert len(notices) == int(drop_filter), seen
            seen.clear()
    finally:
        logger.removeHandler(keep)


def test_deepspeed_resume_follows_the_configs_changed_settings(
        tmp_path, capsys, deepspeed_world_of_one):
    # ZeRO stage 2 in this process: DeepSpeed loads the checkpoint's groups
    # (lrs, weight decays) itself. Resumed with a new lr, weight decay and
    # layer decay, every group's lr after the resume is that of an
    # uninterrupted run of the new config. Dropout off: mmengine reseeds on
    # resume.
    # 64 images: 2 batches of 32 an epoch
    options = [*SHORT[1:-1], 'model.drop_path_rate=0.0',
               'model.proj_drop_rate=0.0', 'model.attn_drop_rate=0.0',
               f'train_dataloader.dataset.indices={list(range(64))}',
               f'val_dataloader.dataset.indices={list(range(32))}']
    new = ['optim_wrapper.optimizer.lr=1e-3',
           'optim_wrapper.optimizer.weight_decay=0.1',
           'optim_wrapper.paramwise_cfg.layer_decay_rate=0.5']
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    train_in_process(CONFIG, whole, 'train_cfg.max_epochs=3', *options, *new)
    train_in_process(CONFIG, part, 'train_cfg.max_epochs=2', *options)
    resumed = train_in_process(CONFIG, part, 'train_cfg.max_epochs=3',
                               *options, *new, flags=('--resume', ))
    assert 'resumed epoch: 2' in resumed
    # group 0 (the head, layer 5) at epoch 3 of the cosine:
    # 1e-5 + (2e-3 - 1e-5) * 0.75 then, 1e-5 + (1e-3 - 1e-5) * 0.75 now
    [line] = [x for x in resumed.splitlines()
              if 'Resume: following the config' in x]
    assert line.endswith(
        'following the config, optim_wrapper.optimizer.lr 0.002 -> 0.001; '
        'optim_wrapper.optimizer.weight_decay 0.05 -> 0.1; '
        'optim_wrapper.paramwise_cfg.layer_decay_rate 0.75 -> 0.5; '
        "train_cfg.max_epochs 2 -> 3: 11 groups' lr, 5 groups' "
        'weight_decay changed (group 0 lr 0.001502 -> 0.0007525)'), line

    def epoch_3(work_dir):
        # per iteration: lr and base_lr, then LayerLrLoggerHook's
        # lr_layer_0 ... lr_layer_5 (layer depths' lrs)
        lrs = [{k: v for k, v in r.items() if k in ('lr', 'base_lr')
                or k.startswith('lr_layer_')}
               for r in read_scalars(work_dir) if r.get('epoch') == 3]
        return [r for r in lrs if r]

    expected = epoch_3(whole)
    assert [len(r) for r in expected] == [2, 6, 2, 6]
    got = epoch_3(part)
    assert [r.keys() for r in got] == [r.keys() for r in expected]
    for want, have in zip(expected, got):
        for key in want:
            assert have[key] == pytest.approx(want[key], rel=1e-12), key
    # every group's settings at the end, as DeepSpeed saved them: the
    # uninterrupted run's (weight decay 0.1 on the 5 decayed groups)
    from mmlr.deepspeed_strategy import load_weights_only

    def saved_groups(work_dir):
        path = (work_dir / 'epoch_3.pth' /
                'zero_pp_rank_0_mp_rank_00_optim_states.pt')
        zero = load_weights_only(str(path), 'cpu')['optimizer_state_dict']
        return [{k: g[k] for k in ('lr', 'initial_lr', 'weight_decay')}
                for g in zero['base_optimizer_state']['param_groups']]

    assert [g['weight_decay'] for g in saved_groups(part)].count(0.1) == 5
    for want, have in zip(saved_groups(whole), saved_groups(part),
                          strict=True):
        assert have == pytest.approx(want, rel=1e-12)

    # settings_from='checkpoint' keeps the checkpoint's lrs: the old
    # config's (2e-3, decay 0.75) at epoch 3 of its cosine
    keep = tmp_path / 'keep.py'
    keep.write_text(
        f'_base_ = [{str(REPO / CONFIG)!r}]\n'
        "custom_hooks = [dict(type='mmlr.OptimizerResumeHook', "
        "settings_from='checkpoint')]\n")
    kept = train_in_process(str(keep), tmp_path / 'keep',
                            'train_cfg.max_epochs=3', *options, *new,
                            flags=('--resume', str(part / 'epoch_2.pth')))
    assert "keeping the checkpoint's values" in kept
    assert [r[f'lr_layer_{layer}'] for r in epoch_3(tmp_path / 'keep')
            if 'lr_layer_0' in r for layer in range(6)] == pytest.approx(2 * [
                ETA_MIN + (2e-3 * 0.75**(5 - layer) - ETA_MIN) * COSINE[3]
                for layer in range(6)], rel=1e-12)

    # A changed group layout (the head's bias frozen: group 1 gone, the
    # patch embedding back) cannot be resumed by DeepSpeed, which places
    # the state by group position: one line, before it reads the state.
    line = user_error_line(
        capsys, tool_main('train'), str(REPO / CONFIG), '--work-dir',
        str(tmp_path / 'frozen'), '--resume', str(part / 'epoch_2.pth'),
        '--cfg-options', *options,
        "optim_wrapper.paramwise_cfg.freeze=['backbone.head.bias']",
        'experiment_name=deepspeed_changed_layout')
    assert line == (
        "error: cannot resume: the optimizer groups the config builds hold "
        "other parameters than the checkpoint's (group 1: 10 new in it (e.g. "
        "'backbone.blocks.3.attn.proj.bias'), 1 no longer in it (e.g. "
        "'backbone.head.bias')); DeepSpeed restores the optimizer state by "
        'group position, not by parameter name: resume with the freeze and '
        'paramwise_cfg the checkpoint was written with')


def test_deepspeed_group_layouts_compare_by_names_per_group():
    from mmlr.deepspeed_resume import layout_change
    saved = [['head.weight', 'head.bias'], ['blocks.0.weight']]
    # the order inside a group is DeepSpeed's (it depends on the ranks)
    assert layout_change(saved, [['head.bias', 'head.weight'],
                                 ['blocks.0.weight']]) is None
    assert layout_change(saved, [*saved, ['patch.weight']]) == \
        '2 groups then, 3 now'
    assert layout_change(saved, [['head.weight'],
                                 ['blocks.0.weight', 'head.bias']]) == (
        "group 0: 1 no longer in it (e.g. 'head.bias')")
