"""The benchmark scripts run: each ``--quick`` run prints its Markdown
table and writes valid JSON. A smoke test only: it never looks at a time,
because timings on a shared machine prove nothing."""
import json
from pathlib import Path

import pytest

from conftest import run_tool

#: script -> a header every report of it contains
SCRIPTS = {
    'benchmarks/group_counts.py': '| model | tensors |',
    'benchmarks/optimizer_step.py': '| model | weights | optimizer | mode |',
    'benchmarks/build_time.py': '| tensors | mmlr ms |',
    'benchmarks/scheduler_step.py': '| call | groups | mmengine µs |',
    'benchmarks/lr_curve_simulation.py': '| arm | µs / iteration |',
}


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_quick_run_prints_table_and_json(script: str, tmp_path: Path):
    out = tmp_path / 'result.json'
    result = run_tool(script, '--quick', '--json', str(out), timeout=120)
    assert SCRIPTS[script] in result.stdout
    assert '| --- |' in result.stdout
    data = json.loads(out.read_text())
    assert data['env']['command'].endswith(f'--quick --json {out}')
    assert len(data) > 1  # results beside the environment

