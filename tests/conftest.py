import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

# One compute thread per process, for this process and every process a test
# starts (they inherit the variable): the suite runs two workers on two
# cores, and torch's default of one thread per core in each of them and of
# a training they start makes OpenMP threads wait for each other, which
# slowed iterations of the demo twentyfold. Set before torch is imported.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import mmengine.config.config as mmengine_config  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# Property tests draw the same examples on every run and every machine (no
# example database either); benchmarks/chain_property_sweep.py runs the chain
# property over many fresh random examples instead.
settings.register_profile('suite', derandomize=True, deadline=None)
settings.load_profile('suite')


def _config_text_unformatted(text: str, **style) -> tuple[str, bool]:
    return text, False


# mmengine formats a config's text with yapf each time it writes it (the
# dump when a Runner starts, meta['cfg'] in every checkpoint): about 0.3 s
# each, a third of a short digits training. Trainings in this process write
# it unformatted, as mmengine's Config(format_python_code=False) does; the
# text is the same Python (the resume hook parses it back). Trainings in a
# subprocess (tools/train.py, dist_train.sh) still format it.
mmengine_config.FormatCode = _config_text_unformatted


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


def warm_up_then_cosine_by_hand(lr: float, epochs: int, epoch_length: int,
                                 start_factor: float, **cosine) -> list:
    """The lr of every iteration of a one-group SGD under mmengine's own
    LinearLR (by iteration, over the first epoch) and CosineAnnealingLR (by
    epoch, from epoch 1 to ``epochs``), stepped as ParamSchedulerHook steps
    them: the reference the simulated curves are checked against."""
    import torch
    from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    warm = LinearLR(opt, start_factor=start_factor, end=epoch_length,
                    by_epoch=False)
    cosine = CosineAnnealingLR(opt, begin=1, end=epochs, T_max=epochs - 1,
                               **cosine)
    values = []
    for it in range(epochs * epoch_length):
        values.append(opt.param_groups[0]['lr'])
        opt.step()
        warm.step()
        if (it + 1) % epoch_length == 0:
            cosine.step()
    return values


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
def gloo_world_of_one():
    """A one-process gloo group for in-process DDP/ZeRO tests.

    torch allows one default group per process, and building a ZeRO
    config's optimizer (mmlr.analysis) may already have started one: reuse
    it then, and tear down only a group this fixture created.
    """
    import torch.distributed as dist
    created = not dist.is_initialized()
    if created:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                                rank=0, world_size=1)
    yield
    if created:
        dist.destroy_process_group()


@pytest.fixture(autouse=True)
def console_logging_outlives_capsys():
    """A Runner built inside a test that uses ``capsys`` gives its logger a
    handler on that test's captured stdout, closed when the test ends; the
    logger stays mmengine's 'current' one, so a later test's log lines would
    go to a closed file ('--- Logging error ---' on stderr). Point such
    handlers at the stdout of the moment."""
    yield
    from mmengine.logging import MMLogger
    for logger in list(MMLogger._instance_dict.values()):
        for handler in logger.handlers:
            stream = getattr(handler, 'stream', None)
            if stream is not None and getattr(stream, 'closed', False):
                handler.stream = sys.stdout  # setStream would flush it


@pytest.fixture
def repo() -> Path:
    return REPO


def tool_module(name: str):
    """``tools/<name>.py`` imported as a module, to call it in this
    process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'mmlr_tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_main(name: str):
    """``main`` of ``tools/<name>.py``, to run a tool in this process."""
    return tool_module(name).main


def user_error_line(capsys, main, *argv: str) -> str:
    """Run a tool's ``main(argv)`` and return its one stderr line, checking
    that it stopped as a user error: exit code 2, one line ``error: ...``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2, lines
    assert len(lines) == 1 and lines[0].startswith('error: '), lines
    return lines[0]


_train_runs = itertools.count()


def wait_for_a_new_second(work_dir: Path) -> None:
    """Wait until the clock is past the second of every run in
    ``work_dir``: a Runner names its log folder (``WORK_DIR/<timestamp>``)
    by the second it starts in, so a resume that starts in the same second
    as the run it resumes would write into that run's folder and log."""
    def now():
        return time.strftime('%Y%m%d_%H%M%S')
    runs = {p.name for p in Path(work_dir).glob('*') if p.is_dir()}
    while now() in runs:
        time.sleep(0.05)


def train_in_process(config: str, work_dir: Path, *cfg_options: str,
                     flags: tuple = ()) -> str:
    """Run ``tools/train.py config --work-dir work_dir *flags --cfg-options
    ...`` as ``main(argv)`` in this process, under an experiment name of its
    own (the Runners of one process must not share one), and return the text
    of the log file this run wrote."""
    name = f'train_in_process_{next(_train_runs)}'
    wait_for_a_new_second(work_dir)
    before = set(Path(work_dir).glob('*/*.log'))
    tool_main('train')([config, '--work-dir', str(work_dir), *flags,
                        '--cfg-options', *cfg_options,
                        f'experiment_name={name}'])
    [log] = set(Path(work_dir).glob('*/*.log')) - before
    return log.read_text()
