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


SNAPSHOT = '''
    import mmengine.registry.root as root
    from mmengine.registry import Registry

    def snapshot():
        return {{
            name: dict(reg.module_dict)
            for name, reg in vars(root).items() if isinstance(reg, Registry)
        }}

    before = snapshot()
    import {module}
    after = snapshot()
    changed = [(reg, key) for reg, entries in before.items()
               for key, cls in entries.items() if after[reg].get(key) is not cls]
    added = sorted((reg, key) for reg, entries in after.items()
                   for key in entries if key not in before[reg])
    print('CHANGED', changed)
    print('ADDED', added)
'''


@pytest.mark.parametrize('module', ['mmlr', 'mmlr.demo'])
def test_import_changes_no_existing_root_entry(module):
    out = _run(SNAPSHOT.format(module=module))
    assert 'CHANGED []' in out, out
    # The demo's generic names (Accuracy, ...) never reach the root.
    assert "'Accuracy'" not in out and "'DigitsViT'" not in out, out


def test_demo_components_build_by_scoped_name_without_custom_imports():
    out = _run('''
        from mmengine.registry import DATASETS, METRICS, MODELS
        from mmengine.registry import DefaultScope
        DefaultScope.get_instance('probe', scope_name='mmengine')
        print(type(MODELS.build(dict(type='mmlr.DigitsViT'))).__name__)
        print(type(METRICS.build(dict(type='mmlr.Accuracy'))).__name__)
        dataset = DATASETS.build(dict(type='mmlr.DigitsDataset', split='val'))
        print(type(dataset).__name__, len(dataset))
    ''')
    assert out.split() == ['DigitsViT', 'Accuracy', 'DigitsDataset', '359']
