"""Stepping the curves as one group of arrays (mmlr.analysis.vector_probe)
gives, to the last bit, what one group per curve gives: for every scheduler
class vis_lr.py steps that way, alone and chained, and for each parameter
it schedules."""
import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.optim.scheduler import MultiStepLR
from mmengine.registry import PARAM_SCHEDULERS, Registry

from mmlr.analysis import TrainLength, build_tracks, simulate
from mmlr.analysis.vector_probe import (scheduler_class, stack_groups,
                                       vector_safe)
from mmlr.registry import PARAM_SCHEDULERS as MMLR_SCHEDULERS
from mmlr.schedulers import LinearLR as MmlrLinearLR

STEPS = 300
LENGTH = TrainLength(False, 1, STEPS, None)

# Arguments per class (by_epoch=False; windows inside the 300 steps), by
# family: ``CosineAnnealing`` serves its LR, Momentum and ParamScheduler
# classes (the latter scheduling weight decay). The cosine ends past T_max
# to reach its restart branch.
ARGS = {
    'Constant': dict(factor=0.5, end=100),
    'CosineAnnealing': dict(T_max=120, eta_min=1e-4, begin=20, end=280),
    'CosineRestart': dict(periods=[100, 150], restart_weights=[1, 0.5],
                          eta_min=1e-5),
    'Exponential': dict(gamma=0.99, begin=10, end=200),
    'Linear': dict(start_factor=0.1, end_factor=0.7, end=150),
    'MultiStep': dict(milestones=[50, 120], gamma=0.3),
    'OneCycle': dict(eta_max=0.2, total_steps=STEPS, param_name='lr'),
    'Poly': dict(eta_min=1e-5, power=1.5, begin=30, end=250),
    'Step': dict(step_size=40, gamma=0.5),
    'mmlr.LinearLR': dict(start_factor=0.0, end_factor=1.0, end=150),
    'mmlr.LinearDecayLR': dict(start_factor=1.0, end_factor=0.0,
                               begin=100, end=300),
    'mmlr.LinearLrInterval': dict(start_factor=1.0, end_factor=0.1,
                                  interval=30, begin=50, end=290),
}


def args_for(cls: type) -> tuple[str, dict]:
    """The parameter ``cls`` schedules and its arguments."""
    name = cls.__name__
    if cls.__module__.startswith('mmlr.'):
        return 'lr', dict(ARGS[f'mmlr.{name}'], by_epoch=False)
    for suffix, param in (('LR', 'lr'), ('Momentum', 'momentum'),
                          ('ParamScheduler', 'weight_decay')):
        family = name[:-len(suffix)]
        if name.endswith(suffix) and family in ARGS:
            args = dict(ARGS[family], by_epoch=False)
            if suffix == 'ParamScheduler':
                args.setdefault('param_name', param)
            else:
                args.pop('param_name', None)
            return args.get('param_name', param), args
    raise KeyError(f'no test arguments for {name}: add them to ARGS')


def vector_classes() -> list[type]:
    classes = {
        cls for registry in (PARAM_SCHEDULERS, MMLR_SCHEDULERS)
        for cls in registry.module_dict.values() if vector_safe(cls)
    }
    return sorted(classes, key=lambda c: (c.__module__, c.__name__))


def wrapper(kind: str = 'adamw') -> OptimWrapper:
    """Seven groups: layer-decayed lr, alternating weight decay and (Adam)
    first beta, or SGD momentum."""
    groups = [
        dict(params=[torch.nn.Parameter(torch.zeros(1))],
             lr=0.01 * 0.65**k, weight_decay=0.05 * (k % 2),
             **(dict(betas=(0.9 - 0.01 * k, 0.999)) if kind == 'adamw'
                else dict(momentum=0.9 - 0.02 * k)))
        for k in range(7)
    ]
    optimizer = torch.optim.AdamW(groups, lr=0.01) if kind == 'adamw' \
        else torch.optim.SGD(groups, lr=0.01, momentum=0.9)
    return OptimWrapper(optimizer)


def both_ways(configs: list[dict], param: str, kind: str = 'adamw'):
    runs = []
    for vectorise in (True, False):
        tracks = build_tracks(wrapper(kind), configs, LENGTH, param,
                              vectorise=vectorise)
        runs.append((tracks[0], simulate(tracks, LENGTH, param)))
    return runs


def test_every_safe_class_is_listed():
    names = {cls.__name__ for cls in vector_classes()}
    # mmengine's 26 non-plateau schedulers and mmlr's three ramps
    assert {'CosineAnnealingLR', 'OneCycleParamScheduler', 'PolyMomentum',
            'LinearLR', 'LinearDecayLR', 'LinearLrInterval'} <= names
    assert len(vector_classes()) == 29
    assert not {'ReduceLR', 'ReduceOnPlateauLR'} & names


@pytest.mark.parametrize('cls', vector_classes(),
                         ids=lambda c: f'{c.__module__.split(".")[0]}.'
                         f'{c.__name__}')
@pytest.mark.parametrize('kind', ['adamw', 'sgd'])
def test_arrays_equal_groups_to_the_bit(cls, kind):
    param, args = args_for(cls)
    configs = [dict(type=cls, **args)]
    if param == 'lr':  # and chained: a warm-up before, a step decay after
        configs = [dict(type=MmlrLinearLR, start_factor=0.0, end=40,
                        by_epoch=False)] + configs + [
            dict(type=MultiStepLR, milestones=[200], gamma=0.5,
                 by_epoch=False)]
    (vector, fast), (plain, slow) = both_ways(configs, param, kind)
    assert vector.vectorised and not plain.vectorised
    assert fast.values.shape == slow.values.shape == (STEPS, 7)
    np.testing.assert_array_equal(fast.values, slow.values)
    if 'OneCycle' not in cls.__name__:  # which sets every group alike
        assert (np.ptp(slow.values, axis=1) > 0).any()  # curves differ


def test_other_classes_step_group_by_group():
    class Halve(MultiStepLR):  # a downstream package's own scheduler
        pass

    assert not vector_safe(Halve)
    for config in (dict(type=Halve, milestones=[10], by_epoch=False),
                   dict(type='ReduceLR', monitor='loss', by_epoch=True),
                   # per-group lists keep the groups apart (seven and
                   # OptimWrapper's pseudo group)
                   dict(type='OneCycleLR', eta_max=[0.1] * 8,
                        total_steps=STEPS, by_epoch=False)):
        [track] = build_tracks(wrapper(), [config], LENGTH)
        assert not track.vectorised, config
        assert track.per_group_reason, config


def test_a_downstream_class_under_its_own_scope_is_not_trusted():
    # A package's own MultiStepLR, reached through _scope_ (or its default
    # scope), is not mmengine's: it may compare values (max(v, 1e-3)).
    scoped = Registry('param scheduler', parent=PARAM_SCHEDULERS,
                      scope='mmlr_vector_test')

    @scoped.register_module(name='MultiStepLR')
    class Floored(MultiStepLR):
        def _get_value(self):
            return [max(v, 1e-3) for v in super()._get_value()]

    config = dict(type='MultiStepLR', _scope_='mmlr_vector_test',
                  milestones=[100, 200], gamma=0.01, by_epoch=False)
    assert scheduler_class(config) is Floored
    [track] = build_tracks(wrapper(), [config], LENGTH)
    assert not track.vectorised
    values = simulate([track], LENGTH).values
    assert values.min() == 1e-3  # the floor of the package's class


def test_verbose_schedulers_step_group_by_group():
    # print_value formats each value with "{:.4e}", which an array refuses
    config = dict(type='ExponentialLR', gamma=0.99, by_epoch=False,
                  verbose=True)
    [track] = build_tracks(wrapper(), [config], LENGTH)
    assert not track.vectorised


def test_several_optimizers_with_one_value_for_all_groups():
    # OneCycleLR writes one number for a whole group of arrays; with two
    # optimizers each track's row is still as wide as its curves
    wrappers = OptimWrapperDict(a=wrapper(), b=wrapper('sgd'))
    config = [dict(type='OneCycleLR', eta_max=0.1, total_steps=STEPS,
                   by_epoch=False)]
    fast, slow = (simulate(build_tracks(wrappers, config, LENGTH,
                                        vectorise=v), LENGTH)
                  for v in (True, False))
    assert fast.values.shape == (STEPS, 14)
    np.testing.assert_array_equal(fast.values, slow.values)


def test_stack_groups_keeps_equal_settings_and_refuses_others():
    stacked = stack_groups([dict(lr=0.1, betas=(0.9, 0.999), amsgrad=False),
                            dict(lr=0.2, betas=(0.8, 0.999), amsgrad=False)])
    np.testing.assert_array_equal(stacked['lr'], [0.1, 0.2])
    np.testing.assert_array_equal(stacked['betas'][0], [0.9, 0.8])
    assert stacked['amsgrad'] is False
    with pytest.raises(ValueError):  # read-only: no in-place change
        stacked['lr'] *= 2
    assert stack_groups([dict(lr=0.1, name='a'), dict(lr=0.2,
                                                      name='b')]) is None
    assert stack_groups([dict(lr=0.1), dict(lr=0.2, extra=1)]) is None
