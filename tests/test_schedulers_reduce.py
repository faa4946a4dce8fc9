"""ReduceLR: PyTorch/mmengine plateau semantics, metric plumbing, checks."""
import math

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.optim.scheduler import ReduceOnPlateauLR
from mmengine.registry import PARAM_SCHEDULERS

import mmlr.schedulers.reduce as reduce_module
from mmlr.schedulers import LinearLR, ReduceLR
from test_schedulers_linear import sgd


def validate(optimizer, scheduler, metrics: list, key: str = 'loss'):
    """One epoch (optimizer step, epoch-end step) then one validation per
    metric, as mmengine's ParamSchedulerHook does; the lrs after each."""
    seen = []
    for value in metrics:
        optimizer.step()
        scheduler.step()
        scheduler.step({key: value})
        seen.append([g['lr'] for g in optimizer.param_groups])
    return seen


@pytest.mark.parametrize('metrics, kwargs', [
    ([10, 9, 8, 7, 6, 6, 6, 6, 6, 6], dict(mode='min')),
    ([10, 9, 8, 7, 6, 6, 6, 6, 6, 6], dict(mode='min', threshold=0.9,
                                             threshold_mode='abs')),
    ([1, 2, 3, 4, 5, 5, 5, 5, 5, 5], dict(mode='max')),
    ([1, 2, 3, 4, 5, 5.01, 5, 5, 9, 5, 5, 5], dict(mode='max',
                                                     threshold=0.01)),
    ([3, math.nan, 2, math.inf, 2, 2, 2, 2], dict(mode='min')),
])
@pytest.mark.parametrize('min_lr', [0.0, [0.01, 0.1]])
def test_same_lrs_as_mmengines_reduce_on_plateau(metrics, kwargs, min_lr):
    # mmengine's ReduceOnPlateauLR (rule 'less'/'greater', same formulas as
    # PyTorch) is the reference; patience 2, cooldown 1, factor 0.1
    rule = {'min': 'less', 'max': 'greater'}[kwargs['mode']]
    theirs_kwargs = {k: v for k, v in kwargs.items() if k != 'mode'}
    if 'threshold_mode' in theirs_kwargs:
        theirs_kwargs['threshold_rule'] = theirs_kwargs.pop('threshold_mode')
    a, b = sgd(0.05, 0.5), sgd(0.05, 0.5)
    ours = ReduceLR(a, patience=2, cooldown=1, min_lr=min_lr, **kwargs)
    theirs = ReduceOnPlateauLR(b, patience=2, cooldown=1, rule=rule,
                               min_value=min_lr, **theirs_kwargs)
    assert validate(a, ours, metrics) == validate(b, theirs, metrics)


def test_reduces_after_more_than_patience_bad_checks():
    # best 10 at check 1; checks 2, 3 bad (patience 2 tolerated); check 4 bad
    # -> reduce to 0.1 * 0.5; counters reset; checks 5, 6, 7 bad -> again
    o = sgd(0.1)
    s = ReduceLR(o, patience=2, factor=0.5)
    lrs = [lrs[0] for lrs in validate(o, s, [10, 11, 12, 13, 14, 15, 16])]
    assert lrs == pytest.approx([.1, .1, .1, .05, .05, .05, .025])


def test_min_lr_floors_each_group():
    o = sgd(0.1, 0.01)
    s = ReduceLR(o, patience=0, factor=0.1, min_lr=[0.005, 0.0])
    flat = [lr for lrs in validate(o, s, [1, 1, 1]) for lr in lrs]
    assert flat == pytest.approx([.1, .01, .01, .001, .005, .0001])


@pytest.mark.parametrize('eps, expected', [
    # check 1 sets the best; checks 2-4 are worse, and patience 0 reduces at
    # each by x0.5 unless the change is smaller than eps (PyTorch's rule):
    # from 0.05 the change is 0.025 < 0.03, so the lr never moves
    (0.03, [.05, .05, .05, .05]),
    # eps 0.01: 0.05 -> 0.025 (change 0.025) -> 0.0125 (0.0125); then a
    # change of 0.00625 < 0.01 is skipped
    (0.01, [.05, .025, .0125, .0125]),
])
def test_eps_skips_reductions_smaller_than_it_like_pytorch(eps, expected):
    metrics = [1, 2, 3, 4]
    o, reference = sgd(0.05), sgd(0.05)
    s = ReduceLR(o, patience=0, factor=0.5, eps=eps)
    lrs = [lrs[0] for lrs in validate(o, s, metrics)]
    assert lrs == pytest.approx(expected, rel=1e-15)
    torch_s = torch.optim.lr_scheduler.ReduceLROnPlateau(
        reference, patience=0, factor=0.5, eps=eps)
    theirs = []
    for value in metrics:
        reference.step()
        torch_s.step(value)
        theirs.append(reference.param_groups[0]['lr'])
    assert lrs == theirs


def test_optim_wrapper_pseudo_group_takes_the_last_min_lr():
    wrapper = OptimWrapper(sgd(0.1, 0.01))
    s = ReduceLR(wrapper, min_lr=[0.1, 0.002])
    assert s.min_values == [0.1, 0.002, 0.002]


def test_warm_up_does_not_undo_a_reduction():
    # iteration warm-up over 6 steps from 0.2; a reduction (x0.5) after the
    # second step must persist through the rest of the ramp
    o = sgd(0.1)
    warm = LinearLR(o, start_factor=0.2, end=6, by_epoch=False)
    plateau = ReduceLR(o, patience=0, factor=0.5)
    seen = []
    for step in range(8):
        seen.append(o.param_groups[0]['lr'])
        o.step()
        warm.step()
        if step in (0, 1):  # an "epoch" ends, then validation
            plateau.step()
            plateau.step({'loss': 1.0})  # the second: no improvement
    # 0.1 * (0.2 + 0.8 t / 5), halved from the third value on
    ramp = [0.1 * (0.2 + 0.8 * min(t, 5) / 5) for t in range(8)]
    assert seen == pytest.approx(ramp[:2] + [x * 0.5 for x in ramp[2:]])


def test_missing_metric_lists_the_available_keys():
    o = sgd(0.1)
    s = ReduceLR(o, monitor='accuracy/top1')
    o.step()
    s.step()
    with pytest.raises(KeyError, match=r"accuracy/top1.*\['accuracy/top5', "
                       r"'loss'\]"):
        s.step({'loss': 1.0, 'accuracy/top5': 90.0})


def test_missing_metric_with_strict_false_warns_once(monkeypatch):
    logged = []
    monkeypatch.setattr(reduce_module, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    o = sgd(0.1)
    s = ReduceLR(o, monitor='accuracy/top1', strict=False, patience=0)
    validate(o, s, [1.0, 1.0, 1.0], key='loss')
    assert o.param_groups[0]['lr'] == 0.1
    assert len(logged) == 1 and 'accuracy/top1' in logged[0]


def test_nan_metric_warns_and_counts_as_no_improvement(monkeypatch):
    logged = []
    monkeypatch.setattr(reduce_module, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    o = sgd(0.1)
    s = ReduceLR(o, patience=1)
    validate(o, s, [1.0, float('nan'), float('nan')])
    assert o.param_groups[0]['lr'] == pytest.approx(0.01)
    assert len(logged) == 2 and 'nan' in logged[0]


def test_training_scalar_is_averaged_over_each_epoch():
    # 3 iterations per epoch; the epoch means are 2, 1.5, 1.6, 1.7: best at
    # epoch 2, two bad epochs (> patience 1) -> reduce after epoch 4
    hub = MessageHub.get_instance('reduce-train-scalar')
    o = sgd(0.1)
    s = ReduceLR(o, monitor='train/loss', patience=1)
    losses = [[3, 2, 1], [2, 1.5, 1], [1.6, 1.6, 1.6], [1.7, 1.7, 1.7]]
    lrs, it = [], 0
    for epoch in losses:
        for loss in epoch:
            hub.update_info('iter', it)
            hub.update_scalar('train/loss', loss)
            it += 1
            o.step()
        s.step()  # after_train_epoch
        s.step({'accuracy/top1': 50.0})  # validations are ignored
        lrs.append(o.param_groups[0]['lr'])
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01])
    assert s.num_checks == 4


def test_training_scalar_by_iteration_converted_from_epochs():
    # convert_to_iter_based: check every 3 iterations (one epoch of 3),
    # patience still counts checks (epochs)
    s = PARAM_SCHEDULERS.build(
        dict(type='ReduceLR', monitor='train/loss', by_epoch=True,
             convert_to_iter_based=True, patience=0, end=4),
        default_args=dict(optimizer=sgd(0.1), epoch_length=3))
    assert (s.by_epoch, s.check_interval, s.end) == (False, 3, 12)


@pytest.mark.parametrize('kwargs, error, name', [
    (dict(mode='lowest'), ValueError, "mode must be 'min' or 'max'"),
    (dict(factor=1.0), ValueError, 'factor'),
    (dict(factor=0.0), ValueError, 'factor'),
    (dict(factor=-0.5), ValueError, 'factor'),
    (dict(threshold=-1e-4), ValueError, 'threshold'),
    (dict(threshold_mode='relative'), ValueError, 'threshold_mode'),
    (dict(patience=-1), ValueError, 'patience'),
    (dict(cooldown=1.5), ValueError, 'cooldown'),
    (dict(min_lr=[0.1, 0.1, 0.1]), ValueError, 'param groups'),
    (dict(min_lr=-1.0), ValueError, 'min_lr'),
    (dict(monitor=''), TypeError, 'monitor'),
    (dict(by_epoch=False), ValueError, 'by_epoch=True'),
    (dict(check_interval=0), ValueError, 'check_interval'),
    (dict(begin=3, end=3), ValueError, 'end must be larger than begin'),
])
def test_bad_arguments_are_refused_at_construction(kwargs, error, name):
    with pytest.raises(error, match=name):
        ReduceLR(sgd(0.1, 0.01), **kwargs)


def test_validation_metric_scheduler_refuses_conversion():
    with pytest.raises(ValueError, match='drop convert_to_iter_based'):
        PARAM_SCHEDULERS.build(
            dict(type='ReduceLR', monitor='accuracy/top1', by_epoch=True,
                 convert_to_iter_based=True),
            default_args=dict(optimizer=sgd(0.1), epoch_length=3))


def test_metrics_must_be_a_dict():
    s = ReduceLR(sgd(0.1))
    with pytest.raises(TypeError, match='dict'):
        s.step(('loss', 1.0))


def test_check_window_counts_the_epoch_just_finished():
    # begin=2: validations after epochs 1 and 2 (0-based 0, 1) are ignored
    o = sgd(0.1)
    s = ReduceLR(o, patience=0, begin=2)
    lrs = [x[0] for x in validate(o, s, [1, 1, 1, 1])]
    # check 1 (after epoch 3) sets best, check 2 is bad -> reduce
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01])
    assert s.num_checks == 2


def test_torch_and_numpy_metric_values_are_stored_as_floats():
    import numpy as np
    o = sgd(0.1)
    s = ReduceLR(o)
    validate(o, s, [np.float64(2.0)])
    validate(o, s, [torch.tensor(1.0)])
    assert type(s.state_dict()['best']) is float and s.best == 1.0


def test_optim_wrapper_dict_through_mmengines_param_scheduler_hook():
    # A GAN-style run: one scheduler list per optimizer, stepped by
    # mmengine's own hook; the validation metric reaches both ReduceLRs.
    from types import SimpleNamespace

    from mmengine.hooks import ParamSchedulerHook
    from mmengine.optim import OptimWrapperDict

    from mmlr.schedulers import LinearLrInterval
    wrappers = OptimWrapperDict(gen=OptimWrapper(sgd(0.2)),
                                disc=OptimWrapper(sgd(0.1)))
    schedulers = {
        name: [LinearLrInterval(w, interval=2, end=5, by_epoch=False),
               ReduceLR(w, monitor='psnr', mode='max', patience=0)]
        for name, w in wrappers.items()
    }
    runner = SimpleNamespace(param_schedulers=schedulers)
    hook = ParamSchedulerHook()
    # window [0, 5), stairs of 2 steps: factors 1, 1, 0.5, 0.5, 0; three
    # iterations leave step 3 (0.5) in force
    for it in range(3):
        for w in wrappers.values():
            w.optimizer.step()
        hook.after_train_iter(runner, it)
    hook.after_train_epoch(runner)
    hook.after_val_epoch(runner, {'psnr': 30.0})
    hook.after_train_epoch(runner)
    hook.after_val_epoch(runner, {'psnr': 29.0})  # worse -> x0.1
    lrs = wrappers.get_lr()
    assert lrs['gen.lr'] == pytest.approx([0.2 * 0.5 * 0.1])
    assert lrs['disc.lr'] == pytest.approx([0.1 * 0.5 * 0.1])


def test_last_value_is_what_the_groups_hold():
    # read from the groups when asked: after a reduction (0.1 -> 0.05 at
    # the second check, patience 0) and after another change to the lr
    o = sgd(0.1, 0.01)
    s = ReduceLR(o, patience=0, factor=0.5)
    validate(o, s, [1, 2])
    assert s.get_last_value() == [0.05, 0.005]
    o.param_groups[0]['lr'] = 0.3
    assert s.get_last_value() == [0.3, 0.005]
    assert s.state_dict()['_last_value'] == [0.3, 0.005]
