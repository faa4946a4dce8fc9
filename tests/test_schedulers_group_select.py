"""GroupSelect on real torch optimizers: the selected groups follow the inner
scheduler's own numbers (checked against mmengine's and mmlr's schedulers
on an optimizer holding only those groups), the others stay put; chains per
group; OptimWrapperDict through mmengine's own Runner code; bad input;
resume."""
import io
import types
import warnings

import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.optim.scheduler import LinearLR as MMEngineLinearLR
from mmengine.registry import PARAM_SCHEDULERS
from mmengine.runner import Runner

import mmlr  # noqa: F401  (registers GroupSelect and mmlr's schedulers)
from mmlr.optim import record_param_names
from mmlr.schedulers import LinearLR as MmlrLinearLR

# Six groups as the layer-decay constructor orders them: top layer first.
LAYER_IDS = [3, 3, 2, 2, 1, 0]
LRS = [0.1, 0.05, 0.075, 0.02, 0.0375, 0.01]
HEAD, BACKBONE = [0, 1], [2, 3, 4, 5]


def optimizer(indices=range(6)) -> OptimWrapper:
    """An OptimWrapper over an SGD holding the groups ``indices`` (each
    with a parameter of its own), with their lrs and layer ids."""
    groups = [
        dict(params=[torch.nn.Parameter(torch.zeros(1))], lr=LRS[i],
             layer_id=LAYER_IDS[i]) for i in indices
    ]
    return OptimWrapper(torch.optim.SGD(groups, lr=0.1, momentum=0.9))


def build(configs: list, wrapper) -> list:
    return [
        PARAM_SCHEDULERS.build(dict(cfg), default_args=dict(optimizer=wrapper))
        for cfg in configs
    ]


def run(schedulers: list, wrapper, steps: int = 12) -> list:
    """Every real group's lr before each of ``steps`` iterations."""
    history = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for _ in range(steps):
            history.append(
                [g['lr'] for g in wrapper.optimizer.param_groups])
            wrapper.step()
            for s in schedulers:
                s.step()
    return history


def select(groups: dict, cfg: dict) -> dict:
    inner = dict(cfg)
    return dict(type='GroupSelect', groups=groups,
                scheduler=inner.pop('type'), **inner)


INNER = {
    'MultiStepLR': dict(type='MultiStepLR', milestones=[3, 7], gamma=0.5,
                        by_epoch=False),
    'PolyLR': dict(type='PolyLR', power=2.0, eta_min=1e-4, end=10,
                   by_epoch=False),
    'CosineAnnealingLR': dict(type='CosineAnnealingLR', T_max=8, begin=2,
                              end=10, eta_min=1e-3, by_epoch=False),
    'mmlr.LinearLR from 0': dict(type='mmlr.LinearLR', start_factor=0.0,
                                 begin=2, end=6, by_epoch=False),
}


@pytest.mark.parametrize('name', sorted(INNER))
@pytest.mark.parametrize('groups,chosen', [
    (dict(role='backbone'), BACKBONE),
    (dict(role='head'), HEAD),
    (dict(layer_ids=[1, 2]), [2, 3, 4]),
    (dict(indices=[1, 5]), [1, 5]),
])
def test_selected_groups_follow_the_scheduler_alone_others_stay(
        name, groups, chosen):
    whole = optimizer()
    lrs = run(build([select(groups, INNER[name])], whole), whole)
    # The independent computation: the scheduler itself on an optimizer
    # holding only the chosen groups.
    alone = optimizer(chosen)
    expected = run(build([INNER[name]], alone), alone)
    assert [[step[i] for i in chosen] for step in lrs] == expected
    for i in set(range(6)) - set(chosen):
        assert {step[i] for step in lrs} == {LRS[i]}
    # OptimWrapper's base group (the logged base_lr) is not a real group
    assert whole.base_param_settings['lr'] == 0.1


# A staged schedule with a plain scheduler over all groups in the middle.
CHAIN = [
    # backbone: 0 for 4 steps, then 1 ...
    (BACKBONE, dict(type='mmlr.LinearLrInterval', start_factor=0.0,
                    end_factor=1.0, interval=4, begin=0, end=5,
                    by_epoch=False)),
    # ... times a warm-up from 0 over steps 4-8
    (BACKBONE, dict(type='mmlr.LinearLR', start_factor=0.0, begin=4, end=9,
                    by_epoch=False)),
    (None, dict(type='ExponentialLR', gamma=0.9, by_epoch=False)),
    # a warm-up of every group while the backbone is held at 0: the ramps
    # share what lies beneath the 0 across selections, so nothing is lost
    (None, dict(type='mmlr.LinearLR', start_factor=0.5, begin=0, end=8,
                by_epoch=False)),
    (HEAD, dict(type='PolyLR', power=1.0, eta_min=0.0, end=14,
                by_epoch=False)),
    ([4, 5], dict(type='StepLR', step_size=5, gamma=0.5, by_epoch=False)),
    (None, dict(type='mmlr.LinearDecayLR', begin=10, end=16,
                by_epoch=False)),
]


def test_chains_per_group_as_mmengine_chains():
    whole = optimizer()
    configs = [cfg if chosen is None else select(dict(indices=chosen), cfg)
               for chosen, cfg in CHAIN]
    lrs = run(build(configs, whole), whole, steps=18)
    for i in range(6):
        # group i alone, under the schedulers that claim it, in list order
        alone = optimizer([i])
        mine = [cfg for chosen, cfg in CHAIN if chosen is None or i in chosen]
        expected = run(build(mine, alone), alone, steps=18)
        assert [step[i] for step in lrs] == pytest.approx(
            [step[0] for step in expected], rel=1e-12, abs=0), i
    # the staged backbone: lr 0 for 4 steps, then warmed in from 0
    assert [step[2] for step in lrs[:5]] == [0.0] * 5
    assert 0 < lrs[5][2] < lrs[6][2] < lrs[7][2]


def test_optim_wrapper_dict_through_the_runner_code():
    wrappers = OptimWrapperDict(generator=optimizer(),
                                discriminator=optimizer())
    runner = types.SimpleNamespace(optim_wrapper=wrappers, _train_loop=None,
                                   train_dataloader=[0] * 5)
    runner._build_param_scheduler = types.MethodType(
        Runner._build_param_scheduler, runner)
    backbone_step = select(dict(role='backbone'), INNER['MultiStepLR'])
    # one list for every optimizer: the same selection on each, no conflict
    built = Runner.build_param_scheduler(runner, [backbone_step])
    assert sorted(built) == ['discriminator', 'generator']
    # a list per optimizer
    head_poly = select(dict(role='head'), INNER['PolyLR'])
    per_name = Runner.build_param_scheduler(
        runner, dict(generator=[head_poly], discriminator=[backbone_step]))
    # generator: poly on the head, MultiStepLR (the shared list) on the
    # backbone; discriminator: both lists on the backbone, chained
    for name, claims in (('generator', [(HEAD, ['PolyLR']),
                                        (BACKBONE, ['MultiStepLR'])]),
                         ('discriminator', [(BACKBONE, ['MultiStepLR'] * 2),
                                            (HEAD, [])])):
        lrs = run(per_name[name] + built[name], wrappers[name])
        for chosen, inner in claims:
            alone = optimizer(chosen)
            expected = run(build([INNER[k] for k in inner], alone), alone)
            assert [[s[i] for i in chosen] for s in lrs] == expected


class Net(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Linear(3, 3)
        self.head = torch.nn.Linear(3, 2)


def named_optimizer(net: Net) -> OptimWrapper:
    return OptimWrapper(torch.optim.SGD([
        dict(params=list(net.head.parameters())),
        dict(params=[net.backbone.weight]),
        dict(params=[net.backbone.bias], lr=0.05),
    ], lr=0.1))


def test_names_select_groups_all_of_whose_names_match():
    net = Net()
    record_param_names(net)
    whole = named_optimizer(net)
    [scheduler] = build(
        [select(dict(names=r'^backbone\.'), INNER['MultiStepLR'])], whole)
    assert scheduler.indices == [1, 2]
    lrs = run([scheduler], whole)
    assert [s[0] for s in lrs] == [0.1] * 12
    assert [s[1] for s in lrs][2:5] == [0.1, 0.05, 0.05]  # milestone 3
    # names and indices: both must hold
    [both] = build([select(dict(names='backbone', indices=[2]),
                           INNER['MultiStepLR'])], named_optimizer(net))
    assert both.indices == [2]


def one_line_error(configs: list, wrapper, match: str) -> str:
    with pytest.raises((ValueError, TypeError), match=match) as info:
        build(configs, wrapper)
    assert '\n' not in str(info.value)
    return str(info.value)


def test_a_pattern_that_splits_a_group_or_unknown_names_are_refused():
    net = Net()
    record_param_names(net)
    one_line_error([select(dict(names='weight'), INNER['MultiStepLR'])],
                   named_optimizer(net),
                   r"groups.names='weight' matches some parameters of "
                   r'optimizer group 0 \(head.weight\) but not others '
                   r'\(head.bias\)')
    # parameters no model named (an optimizer built elsewhere)
    one_line_error([select(dict(names='x'), INNER['MultiStepLR'])],
                   optimizer(), r'groups.names needs the parameter names.*'
                   r'record_param_names')


@pytest.mark.parametrize('groups,match', [
    (dict(layer_ids=[7, 9]), r"groups=\{'layer_ids': \[7, 9\]\} matches no "
     r'optimizer group \(6 groups; layer ids 0 to 3\)'),
    (dict(role='head', indices=[5]), r'matches no optimizer group'),
    (dict(role='neck'), r'groups.role must be one of head, backbone'),
    (dict(roles='head'), r"groups.roles is not a selection key \(did you "
     r"mean 'role'\?\)"),
    (dict(indices=[6]), r'groups.indices \[6\] beyond the optimizer\'s 6 '
     r'groups'),
    (dict(layer_ids=[3, 1]), r'groups.layer_ids must be \[first, last\]'),
    ({}, r'groups must be a dict with one or more of'),
])
def test_bad_selections_name_the_key(groups, match):
    one_line_error([select(groups, INNER['MultiStepLR'])], optimizer(),
                   match)


def test_roles_need_layer_ids():
    plain = OptimWrapper(torch.optim.SGD(
        [dict(params=[torch.nn.Parameter(torch.zeros(1))])], lr=0.1))
    one_line_error([select(dict(role='head'), INNER['MultiStepLR'])], plain,
                   r"groups.role needs the layer ids that constructor="
                   r"'LayerDecayOptimWrapperConstructor' gives")


def test_two_claims_on_a_group_conflict_only_when_they_cannot_chain():
    poly = select(dict(role='head'), INNER['PolyLR'])  # steps [0, 10)
    cosine = select(dict(indices=[1, 2]), INNER['CosineAnnealingLR'])
    message = one_line_error(
        [poly, cosine], optimizer(),
        r'both set lr of optimizer groups \[1\] in iterations \[2, 10\)')
    assert "groups={'role': 'head'}, scheduler=PolyLR" in message
    assert "groups={'indices': [1, 2]}, scheduler=CosineAnnealingLR" \
        in message
    # disjoint windows, or two multiplicative schedulers: they chain
    later = dict(cosine, begin=10, end=20)
    build([poly, later], optimizer())
    build([select(dict(role='head'), INNER['MultiStepLR']),
           select(dict(indices=[1]), INNER['mmlr.LinearLR from 0'])],
          optimizer())
    build([select(dict(role='head'), dict(type='CooldownLR', shape='cosine',
                                          begin=0, end=10, by_epoch=False)),
           select(dict(indices=[0]), INNER['mmlr.LinearLR from 0'])],
          optimizer())
    # windows in different units are not compared
    build([poly, dict(cosine, by_epoch=True)], optimizer())
    # a plain (all groups) scheduler is never a claim: mmengine's lists
    build([poly, INNER['CosineAnnealingLR']], optimizer())


def roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_resume_continues_and_refuses_another_selection():
    staged = [select(dict(role='backbone'), cfg) for _, cfg in CHAIN[:2]]
    whole = optimizer()
    first = build(staged, whole)
    run(first, whole, steps=6)
    states = roundtrip([s.state_dict() for s in first])  # plain data
    # resumed as the Runner does: built on a fresh optimizer, which then
    # takes the checkpoint's group values, and the schedulers their state
    resumed = optimizer()
    again = build(staged, resumed)
    for group, saved in zip(resumed.param_groups, whole.param_groups):
        group.update({k: v for k, v in saved.items() if k != 'params'})
    for s, state in zip(again, states):
        s.load_state_dict(state)
    assert run(again, resumed, steps=6) == run(first, whole, steps=6)

    other = build([select(dict(layer_ids=[0, 1]), CHAIN[0][1])], optimizer())
    with pytest.raises(ValueError) as info:
        other[0].load_state_dict(states[0])
    message = str(info.value)
    assert '\n' not in message
    assert ("GroupSelect(groups={'layer_ids': [0, 1]}, scheduler="
            'LinearLrInterval) now selects optimizer groups [4, 5]') in message
    assert ("the checkpoint's groups={'role': 'backbone'} selected "
            '[2, 3, 4, 5]') in message


def test_resume_refuses_the_same_indices_holding_other_names():
    net = Net()
    record_param_names(net)
    states = [s.state_dict() for s in build(
        [select(dict(indices=[1]), INNER['MultiStepLR'])],
        named_optimizer(net))]
    swapped = Net()
    record_param_names(swapped)
    wrapper = OptimWrapper(torch.optim.SGD([
        dict(params=list(swapped.head.parameters())),
        dict(params=[swapped.backbone.bias]),
        dict(params=[swapped.backbone.weight]),
    ], lr=0.1))
    [scheduler] = build([select(dict(indices=[1]), INNER['MultiStepLR'])],
                        wrapper)
    with pytest.raises(ValueError, match=r'now selects optimizer groups '
                       r'\[1\] \(names [0-9a-f]{12}\), but the checkpoint'):
        scheduler.load_state_dict(states[0])


def test_selected_groups_are_the_optimizers_after_a_load_state_dict():
    # torch's load_state_dict (what a resume calls) puts new dicts in
    # param_groups; the selection must move those, not the ones it was
    # built with: group 1 halves, group 0 keeps its lr.
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    sgd = torch.optim.SGD([dict(params=[params[0]], lr=0.1),
                           dict(params=[params[1]], lr=1.0)], lr=0.1)
    select = PARAM_SCHEDULERS.build(
        dict(type='mmlr.GroupSelect', groups=dict(indices=[1]),
             scheduler='StepLR', step_size=1, gamma=0.5),
        default_args=dict(optimizer=sgd))
    sgd.load_state_dict(sgd.state_dict())
    sgd.step()
    select.step()
    assert [g['lr'] for g in sgd.param_groups] == [0.1, 0.5]


def test_bare_names_are_mmengines_and_mmlr_names_are_ours():
    inner = dict(start_factor=0.5, end=4, by_epoch=False)
    bare, ours = build([select(dict(role='head'), dict(type='LinearLR',
                                                       **inner)),
                        select(dict(role='backbone'),
                               dict(type='mmlr.LinearLR', **inner))],
                       optimizer())
    assert type(bare.scheduler) is MMEngineLinearLR
    assert type(ours.scheduler) is MmlrLinearLR


def test_adds_nothing_to_the_optimizer_beyond_its_scheduler():
    # the same MultiStepLR on every group, alone and inside GroupSelect
    # (with names recorded): the groups and the state dict hold the same
    # keys, and the same values after a few steps
    model = torch.nn.Linear(2, 2)
    record_param_names(model)
    wrappers = []
    for wrap in (False, True):
        wrapper = OptimWrapper(torch.optim.SGD(
            [dict(params=[p], lr=0.1) for p in model.parameters()],
            lr=0.1, momentum=0.9))
        cfg = INNER['MultiStepLR']
        run(build([select(dict(indices=[0, 1]), cfg) if wrap else cfg],
                  wrapper), wrapper, steps=5)
        wrappers.append(wrapper)
    alone, selected = (w.optimizer.state_dict() for w in wrappers)
    assert selected['param_groups'] == alone['param_groups']
    assert selected['state'].keys() == alone['state'].keys()
