import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_tool(*args: str, timeout: float = 300, env: dict | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` (or a shell script) as a user would."""
    command = [sys.executable, *args] if args[0].endswith('.py') else [
        'bash', *args
    ]
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, 'PYTHON': sys.executable, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f'{command} exited {result.returncode}:\n'
                             f'{result.stdout[-3000:]}\n{result.stderr[-5000:]}')
    return result


def read_scalars(work_dir: Path) -> list[dict]:
    """Every training record the LocalVisBackend wrote, in order."""
    records = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def final_accuracy(log: str) -> float:
    """The accuracy of tools/train.py's closing summary line."""
    match = re.search(r'Final validation: accuracy/top1: ([\d.]+)', log)
    assert match, log[-2000:]
    return float(match.group(1))


@pytest.fixture
def repo() -> Path:
    return REPO
