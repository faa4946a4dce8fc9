"""Run many short 2-process trainings and count those that do not exit 0.

A distributed run that trains and validates correctly can still fail at the
very end, when the processes shut down (a rank killed by SIGABRT after the
"Final validation" line, say). Such a failure shows up once in several runs,
so one run proves nothing: this script launches ``--runs`` trainings one
after another, exactly as a user does (``bash tools/dist_train.sh CONFIG
NPROC ...``, each with its own free port and temporary work dir), and
reports how many failed and how.

    python benchmarks/dist_exit_stress.py [--runs 50] [--nproc 2]
        [--config configs/vit_digits_layer_decay.py]
        [--cfg-options KEY=VALUE ...] [--keep-logs DIR] [--json PATH]

A run counts as failed when ``tools/dist_train.sh`` exits non-zero, when it
did not print the closing "Final validation" line, or when any worker
reports an abnormal end (torchrun's "exitcode : N" lines, "terminate
called"). The log of every failed run is kept (``--keep-logs``, default a
temporary directory that is printed). ``--quick`` runs 2 trainings of one
epoch each, a smoke test of the script. Exit status: 1 if any run failed.
"""
import argparse
import collections
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _timing

#: a 2-process layer-decay training, as users start one
DEFAULT_CONFIG = 'configs/vit_digits_layer_decay.py'
DEFAULT_OPTIONS = ['train_cfg.max_epochs=2']
#: one epoch needs the cosine (from epoch 1) to end later than it begins
QUICK_OPTIONS = [
    'train_cfg.max_epochs=1', 'param_scheduler.1.end=2',
    'train_cfg.val_interval=1'
]
CHILD_EXIT = re.compile(r'exitcode\s*:\s*(-?\d+)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_once(config: str, nproc: int, options: list[str], work_dir: Path,
             timeout: float) -> dict:
    """One ``tools/dist_train.sh`` run: its exit code, seconds, output and
    what went wrong (empty when nothing did)."""
    command = ['bash', 'tools/dist_train.sh', config, str(nproc),
               '--work-dir', str(work_dir), '--cfg-options', *options]
    env = {**os.environ, 'PYTHON': sys.executable,
           'PORT': str(free_port())}
    env.setdefault('OMP_NUM_THREADS', '1')
    start = time.perf_counter()
    # start_new_session: on a timeout the whole group (torchrun and its
    # workers) is stopped, not just bash.
    process = subprocess.Popen(
        command, cwd=_timing.REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        returncode = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 15)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            output, _ = process.communicate()
        returncode = 'timeout'
    seconds = time.perf_counter() - start
    child_exits = sorted({int(c) for c in CHILD_EXIT.findall(output)})
    problems = []
    if returncode != 0:
        problems.append(f'exit {returncode}')
    if 'Final validation' not in output:
        problems.append('no "Final validation" line')
    if child_exits:
        problems.append(f'worker exit codes {child_exits}')
    if 'terminate called' in output:
        problems.append('"terminate called"')
    return dict(returncode=returncode, seconds=seconds, output=output,
                child_exits=child_exits, problems=problems)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--runs', type=int, default=50,
                   help='trainings to launch, one after another (default 50)')
    p.add_argument('--nproc', type=int, default=2,
                   help='processes per training (default 2)')
    p.add_argument('--config', default=DEFAULT_CONFIG,
                   help=f'config to train (default {DEFAULT_CONFIG})')
    p.add_argument('--cfg-options', nargs='+', metavar='KEY=VALUE',
                   help='options for tools/train.py (default: '
                   f'{" ".join(DEFAULT_OPTIONS)})')
    p.add_argument('--timeout', type=float, default=600,
                   help='seconds after which a run is stopped and counted '
                   'as failed (default 600)')
    p.add_argument('--keep-logs', metavar='DIR',
                   help='where the logs of failed runs go (default: a new '
                   'temporary directory)')
    p.add_argument('--quick', action='store_true',
                   help='2 runs of one epoch: checks that the script works')
    p.add_argument('--json', metavar='PATH',
                   help='also write the results as JSON to PATH')
    args = p.parse_args()
    runs = 2 if args.quick else args.runs
    options = args.cfg_options or (QUICK_OPTIONS
                                   if args.quick else DEFAULT_OPTIONS)
    log_dir = Path(args.keep_logs or tempfile.mkdtemp(prefix='dist_exit_'))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = _timing.environment()

    results = []
    with tempfile.TemporaryDirectory(prefix='dist_exit_work_') as work:
        for i in range(runs):
            result = run_once(args.config, args.nproc, options,
                              Path(work) / f'run{i}', args.timeout)
            if result['problems']:
                log = log_dir / f'run{i}.log'
                log.write_text(result['output'])
                result['log'] = str(log)
            del result['output']
            results.append(result)
            status = '; '.join(result['problems']) or 'ok'
            print(f'run {i + 1}/{runs}: {result["seconds"]:.0f} s, {status}',
                  flush=True)

    failed = [r for r in results if r['problems']]
    exits = collections.Counter(str(r['returncode']) for r in results)
    child_exits = collections.Counter(
        c for r in results for c in r['child_exits'])
    seconds = [r['seconds'] for r in results]
    table = _timing.markdown_table(
        ['runs', 'failures', 'exit codes (count)',
         'worker exit codes (count)', 'median s / run', 'total s'],
        [[runs, len(failed),
          ', '.join(f'{k} ({v})' for k, v in sorted(exits.items())),
          ', '.join(f'{k} ({v})' for k, v in sorted(child_exits.items()))
          or '-', statistics.median(seconds), round(sum(seconds))]])
    command = (f'bash tools/dist_train.sh {args.config} {args.nproc} '
               f'--cfg-options {" ".join(options)}')
    sections = [('Runs', f'`{command}`\n\n{table}')]
    if failed:
        sections.append(('Failed runs', '\n'.join(
            f'- run {results.index(r) + 1}: {"; ".join(r["problems"])} '
            f'({r["log"]})' for r in failed)))
    _timing.finish(args, 'Exit codes of 2-process trainings', env, sections,
                   dict(command=command, runs=runs, failures=len(failed),
                        results=results))
    if failed:
        raise SystemExit(1)


if __name__ == '__main__':
    main()
