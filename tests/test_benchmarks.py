"""The benchmark scripts run: each ``--quick`` run prints its Markdown
table and writes valid JSON. A smoke test only: it never looks at a time,
because timings on a shared machine prove nothing."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

#: script -> a header every report of it contains
SCRIPTS = {
    'benchmarks/group_counts.py': '| model | tensors |',
    'benchmarks/optimizer_step.py': '| model | weights | optimizer | mode |',
    'benchmarks/build_time.py': '| tensors | mmlr ms |',
    'benchmarks/scheduler_step.py': '| call | groups | mmengine µs |',
    'benchmarks/lr_curve_simulation.py': '| arm | µs / iteration |',
    'benchmarks/sharding_memory.py': '| engine | groups | parameters MB',
}

# Runs each script as ``python SCRIPT --quick --json OUT`` would, one after
# the other in one fresh process (one interpreter start, not five; a
# benchmark changes torch's thread count and the log level, so not in the
# test process), and prints every script's output as JSON.
RUN_EACH = '''
import contextlib, io, json, runpy, sys
sys.path.insert(0, 'benchmarks')
printed = {}
for script, out in json.loads(sys.argv[1]):
    sys.argv = [script, '--quick', '--json', out]
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        try:
            runpy.run_path(script, run_name='__main__')
        except SystemExit as stop:
            if stop.code not in (None, 0):
                raise
    printed[script] = text.getvalue()
print(json.dumps(printed))
'''


@pytest.fixture(scope='module')
def quick_runs(tmp_path_factory) -> dict:
    """``{script: (stdout, json path)}`` of every script's quick run."""
    folder = tmp_path_factory.mktemp('benchmarks')
    outs = {s: str(folder / f'{Path(s).stem}.json') for s in SCRIPTS}
    result = subprocess.run(
        [sys.executable, '-c', RUN_EACH, json.dumps(list(outs.items()))],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-5000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    return {s: (printed[s], Path(outs[s])) for s in SCRIPTS}


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_quick_run_prints_table_and_json(script: str, quick_runs: dict):
    stdout, out = quick_runs[script]
    assert SCRIPTS[script] in stdout
    assert '| --- |' in stdout
    data = json.loads(out.read_text())
    assert data['env']['command'].endswith(f'--quick --json {out}')
    assert len(data) > 1  # results beside the environment
