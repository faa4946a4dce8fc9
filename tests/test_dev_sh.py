"""tools/dev.sh, the README's two commands, with a stand-in environment: a
``bin/python`` that records how it is called, so nothing is installed."""
import hashlib
import os
import subprocess

from conftest import REPO

RECORDING_PYTHON = ('#!/usr/bin/env bash\n'
                    'echo "$*" >> "$(dirname "$0")/calls"\n')


def dev_sh(venv, *args: str) -> list[str]:
    """The calls ``bash tools/dev.sh ARGS`` makes of the environment's
    python."""
    calls = venv / 'bin' / 'calls'
    calls.unlink(missing_ok=True)
    subprocess.run(['bash', str(REPO / 'tools' / 'dev.sh'), *args],
                   check=True, capture_output=True, timeout=60,
                   env={**os.environ, 'MMLR_VENV': str(venv)})
    return calls.read_text().splitlines()


def test_installs_once_then_only_when_the_requirements_change(tmp_path):
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.write_text(RECORDING_PYTHON)
    python.chmod(0o755)
    # a fresh environment: requirements, then mmlr itself, then pytest
    first = dev_sh(venv, 'test', '-k', 'registry')
    assert [c.split()[:3] for c in first[:2]] == [['-m', 'pip', 'install']] * 2
    assert '-r requirements.txt' in first[0] and '-e .' in first[1]
    assert first[2:] == ['-m pytest tests -n 2 --dist loadscope -k registry']
    # the stamp is the digest of requirements.txt and setup.py
    wanted = hashlib.sha256((REPO / 'requirements.txt').read_bytes() +
                            (REPO / 'setup.py').read_bytes()).hexdigest()
    stamp = venv / '.mmlr-installed'
    assert stamp.read_text().strip() == wanted
    # unchanged: no install; the demo gets its extra arguments
    assert dev_sh(venv, 'demo', '--cfg-options', 'x=1') == [
        'tools/train.py configs/vit_digits.py --cfg-options x=1']
    # requirements changed since: installed again
    stamp.write_text('an older digest\n')
    assert len(dev_sh(venv, 'test')) == 3
