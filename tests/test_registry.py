"""Where mmlr's names resolve, and that importing mmlr changes nothing else."""
import logging
import subprocess
import sys
import textwrap

import pytest
from mmengine.registry import Registry

import mmlr.registry
from mmlr.registry import export_free_names


def _child_of_fresh_root(scope: str):
    root = Registry(f'probe-{scope}')
    child = Registry(f'probe-{scope}', parent=root, scope=scope)
    return root, child


class _Theirs:
    pass


class _Ours:
    pass


def test_free_names_are_added_to_the_root():
    root, child = _child_of_fresh_root('mmlr_free')
    child.register_module(name='OnlyOurs', module=_Ours)

    assert export_free_names(child) == ['OnlyOurs']
    assert root.get('OnlyOurs') is _Ours


@pytest.fixture
def logged(monkeypatch):
    messages = []
    monkeypatch.setattr(
        mmlr.registry, 'print_log',
        lambda msg, logger=None, level=logging.INFO: messages.append(
            (level, msg)))
    return messages


def test_a_name_the_root_owns_keeps_its_owner_and_warns_once(logged):
    root, child = _child_of_fresh_root('mmlr_taken')
    root.register_module(name='Taken', module=_Theirs)
    child.register_module(name='Taken', module=_Ours)

    assert export_free_names(child) == []

    assert root.get('Taken') is _Theirs
    assert len(logged) == 1
    level, message = logged[0]
    assert level == logging.WARNING
    assert "type='mmlr.Taken'" in message


def test_linear_lr_is_left_to_mmengine_without_a_warning(logged):
    root, child = _child_of_fresh_root('mmlr_linear')
    root.register_module(name='LinearLR', module=_Theirs)
    child.register_module(name='LinearLR', module=_Ours)

    export_free_names(child)

    assert root.get('LinearLR') is _Theirs
    assert logged == []


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


# One fresh process for both imports: importing mmlr.demo alone first
# imports mmlr, so the root as it was before mmlr against the root after
# each import is what two separate processes would see.
SNAPSHOTS = '''
    import mmengine.registry.root as root
    from mmengine.registry import Registry

    def snapshot():
        return {
            name: dict(reg.module_dict)
            for name, reg in vars(root).items() if isinstance(reg, Registry)
        }

    before = snapshot()
    for module in ('mmlr', 'mmlr.demo'):
        __import__(module)
        after = snapshot()
        changed = [(reg, key) for reg, entries in before.items()
                   for key, cls in entries.items()
                   if after[reg].get(key) is not cls]
        added = sorted((reg, key) for reg, entries in after.items()
                       for key in entries if key not in before[reg])
        print(module, 'CHANGED', changed)
        print(module, 'ADDED', added)
'''


@pytest.fixture(scope='module')
def snapshots() -> dict:
    """{module: the lines its import printed} from one fresh process."""
    out = _run(SNAPSHOTS)
    lines = {}
    for line in out.splitlines():
        module, rest = line.split(' ', 1)
        lines[module] = lines.get(module, '') + rest + '\n'
    return lines


@pytest.mark.parametrize('module', ['mmlr', 'mmlr.demo'])
def test_import_changes_no_existing_root_entry(module, snapshots):
    out = snapshots[module]
    assert 'CHANGED []' in out, out
    assert 'ADDED' in out, out
    # The demo's generic names (Accuracy, ...) never reach the root.
    assert "'Accuracy'" not in out and "'DigitsViT'" not in out, out


@pytest.fixture(scope='module')
def scoped_builds() -> list:
    """What a fresh process without custom_imports builds from scoped
    names: first a scheduler (nothing of mmlr imported yet), then the
    demo's model, metric and dataset."""
    return _run('''
        import torch
        from mmengine.registry import PARAM_SCHEDULERS
        o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        s = PARAM_SCHEDULERS.build(dict(type='mmlr.LinearLrInterval', end=5),
                                   default_args=dict(optimizer=o))
        print(type(s).__module__, type(s).__name__)
        from mmengine.registry import DATASETS, METRICS, MODELS
        from mmengine.registry import DefaultScope
        DefaultScope.get_instance('probe', scope_name='mmengine')
        print(type(MODELS.build(dict(type='mmlr.DigitsViT'))).__name__)
        print(type(METRICS.build(dict(type='mmlr.Accuracy'))).__name__)
        dataset = DATASETS.build(dict(type='mmlr.DigitsDataset', split='val'))
        print(type(dataset).__name__, len(dataset))
    ''').split()


def test_demo_components_build_by_scoped_name_without_custom_imports(
        scoped_builds):
    assert scoped_builds[2:] == ['DigitsViT', 'Accuracy', 'DigitsDataset',
                                 '359']


def _build_scheduler(cfg: dict, default_scope: str | None):
    import torch
    from mmengine.registry import PARAM_SCHEDULERS, DefaultScope
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with DefaultScope.overwrite_default_scope(default_scope):
        return PARAM_SCHEDULERS.build(
            dict(cfg, end=5), default_args=dict(optimizer=optimizer))


@pytest.fixture(scope='module')
def downstream_scope():
    """A child registry like mmpretrain's or mmdet's, in its own scope."""
    from mmengine.registry import PARAM_SCHEDULERS
    Registry('parameter scheduler', parent=PARAM_SCHEDULERS,
             scope='mmdownstream')
    return 'mmdownstream'


@pytest.mark.parametrize('scope', ['mmengine', None, 'downstream'])
def test_bare_linear_lr_stays_mmengines_outside_the_mmlr_scope(
        scope, downstream_scope):
    from mmengine.optim.scheduler import LinearLR as MMEngineLinearLR
    scope = downstream_scope if scope == 'downstream' else scope
    built = _build_scheduler(dict(type='LinearLR'), scope)
    assert type(built) is MMEngineLinearLR


@pytest.mark.parametrize('scope', ['mmengine', None, 'downstream', 'mmlr'])
@pytest.mark.parametrize('name',
                         ['LinearDecayLR', 'LinearLrInterval', 'ReduceLR'])
def test_free_names_resolve_bare_under_every_scope(name, scope,
                                                   downstream_scope):
    import mmlr.schedulers
    scope = downstream_scope if scope == 'downstream' else scope
    assert type(_build_scheduler(dict(type=name), scope)) is getattr(
        mmlr.schedulers, name)


@pytest.mark.parametrize('scope', ['mmengine', None, 'downstream', 'mmlr'])
def test_scoped_names_reach_ours_from_every_scope(scope, downstream_scope):
    from mmlr.schedulers import LinearLR
    scope = downstream_scope if scope == 'downstream' else scope
    assert type(_build_scheduler(dict(type='mmlr.LinearLR'), scope)) is \
        LinearLR
    if scope == 'mmlr':
        assert type(_build_scheduler(dict(type='LinearLR'), scope)) is \
            LinearLR


def test_scoped_scheduler_builds_in_a_fresh_process_without_custom_imports(
        scoped_builds):
    assert scoped_builds[:2] == ['mmlr.schedulers.linear_interval',
                                 'LinearLrInterval']
