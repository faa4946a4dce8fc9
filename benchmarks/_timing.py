"""What every benchmark shares: interleaved timing, medians, ratios, and
output as a Markdown table plus JSON.

Machines are noisy (other jobs, frequency scaling, allocator state), so the
arms of one comparison are timed round-robin, after a warm-up, and compared
through medians and ratios taken within one run; absolute times from two
runs are not comparable.

Importing this module puts the repository root first on ``sys.path``, so a
script run as ``python benchmarks/X.py`` measures this checkout's ``mmlr``
rather than whatever copy is installed.
"""
import argparse
import datetime
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every benchmark takes."""
    p = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        '--quick', action='store_true',
        help='tiny sizes and few rounds: runs in seconds, checks that the '
        'script works (numbers are not meaningful)')
    p.add_argument('--json', metavar='PATH',
                   help='also write the results as JSON to PATH')
    p.add_argument(
        '--threads', type=int, metavar='N',
        help="torch's intra-op threads (default: torch's choice, one per "
        'core; 1 with --quick, which then suffers less from a busy machine)')
    return p


def setup(args: argparse.Namespace) -> dict:
    """Apply the common flags and return :func:`environment`."""
    import torch
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    quiet_mmengine()
    return environment()


def interleave(arms: dict[str, Callable[[], object]], rounds: int,
               warmup: int = 1, repeat: int = 1) -> dict[str, list[float]]:
    """Time each arm ``rounds`` times, round-robin, after ``warmup`` untimed
    rounds.

    Each sample times ``repeat`` back-to-back calls and is divided by
    ``repeat``, so sub-millisecond calls are not drowned by timer overhead.
    The order of the arms rotates every round, so no arm always runs right
    after the same neighbour.

    Returns:
        ``{arm: [seconds per call, ...]}``
    """
    names = list(arms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            call = arms[name]
            start = time.perf_counter()
            for _ in range(repeat):
                call()
            elapsed = (time.perf_counter() - start) / repeat
            if r >= warmup:
                samples[name].append(elapsed)
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    """The median of each arm's samples."""
    return {name: statistics.median(s) for name, s in samples.items()}


def spread(values: list[float]) -> float:
    """Relative interquartile range: how noisy one arm's samples were."""
    if len(values) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / statistics.median(values)


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub Markdown table; floats keep 3 significant digits."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f'{value:.3g}'
        return str(value)

    lines = ['| ' + ' | '.join(headers) + ' |',
             '|' + '|'.join(' --- ' for _ in headers) + '|']
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def environment() -> dict:
    """Where and when the numbers were taken (load average included: a
    busy machine is the usual cause of odd numbers)."""
    import torch
    return dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        command=' '.join([Path(sys.executable).name] + sys.argv),
        python=platform.python_version(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpus=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()])


def describe(env: dict) -> str:
    """One line for the top of a report."""
    load = ', '.join(str(x) for x in env['load_average'])
    return (f"{env['date']}, torch {env['torch']}, {env['threads']} threads "
            f"on {env['cpus']} CPUs, load average {load}; "
            f"`{env['command']}`")


def quiet_mmengine() -> None:
    """Silence mmengine's INFO logging (the constructors' per-group and
    per-parameter lines), so stdout holds only the tables. The messages are
    still formatted: only their output is skipped, for every arm alike."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    logger.setLevel(logging.WARNING)
    for handler in logger.handlers:
        handler.setLevel(logging.WARNING)


def finish(args: argparse.Namespace, title: str, env: dict, sections: list,
           results: dict) -> None:
    """Print the report and write the JSON file if ``--json`` was given.

    Args:
        args: The parsed command line.
        title: The report's heading.
        env: From :func:`environment`.
        sections: ``(heading, markdown)`` pairs, printed in order.
        results: Plain data for the JSON file (``env`` is added).
    """
    print(f'## {title}\n\n{describe(env)}\n')
    for heading, body in sections:
        print(f'### {heading}\n\n{body}\n')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(env=env, **results), f, indent=1)
