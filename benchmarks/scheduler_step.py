"""What a scheduler's ``step()`` costs, mmlr's against mmengine's.

Each scheduler drives an ``OptimWrapper`` (SGD) with 28
param groups (ViT-B, MAE recipe, merged) or 152 (ViT-B, one group per
tensor), called the way mmengine's ``ParamSchedulerHook`` calls it:

- ``LinearLR``, ``by_epoch=False``: ``step()`` after every iteration.
- plateau, ``ReduceLR`` vs ``ReduceOnPlateauLR`` (``by_epoch=True``, a
  validation metric): ``step()`` after every epoch, and ``step(metrics)``
  after every validation (the metric never improves less than the
  threshold, so no reduction: the steady state).
- mmlr's ``ReduceLR(monitor='train/loss', by_epoch=False)`` has no mmengine
  counterpart: its ``step()`` runs after every iteration and averages the
  logged training loss from the ``MessageHub``; shown for its own cost.

Each sample times ``--calls`` consecutive calls; the arms of a row are
interleaved round-robin.

    python benchmarks/scheduler_step.py            # full: ~10 s
    python benchmarks/scheduler_step.py --quick    # seconds
"""
import warnings
from collections.abc import Callable

import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.optim.scheduler import LinearLR, ReduceOnPlateauLR

import _timing
from mmlr.schedulers import LinearLR as MmlrLinearLR
from mmlr.schedulers import ReduceLR

GROUP_COUNTS = (28, 152)
END = 10**8  # a window no benchmark leaves


def optim_wrapper(groups: int) -> OptimWrapper:
    """SGD over ``groups`` one-element groups, wrapped as a Runner has it."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    return OptimWrapper(torch.optim.SGD(
        [dict(params=[p], lr=0.1 * 0.9**i) for i, p in enumerate(params)],
        lr=0.1, momentum=0.9))


def improving() -> Callable[[], dict]:
    """Validation metrics whose loss keeps improving (no reduction)."""
    state = dict(loss=1e6)

    def metrics() -> dict:
        state['loss'] *= 0.99
        return dict(state)

    return metrics


def rows_for(groups: int) -> list[tuple[str, dict[str, Callable]]]:
    """``(row label, {arm: one call})`` for every comparison."""
    linear = dict(start_factor=0.1, end=END, by_epoch=False)
    plateau = dict(monitor='loss', patience=10**6)
    ours_plateau = ReduceLR(optim_wrapper(groups), **plateau)
    theirs_plateau = ReduceOnPlateauLR(optim_wrapper(groups), **plateau)
    ours_metrics, theirs_metrics = improving(), improving()
    hub = MessageHub.get_current_instance()
    hub.update_scalar('train/loss', 1.0)
    hub.update_info('iter', 0)
    training = ReduceLR(optim_wrapper(groups), monitor='train/loss',
                        by_epoch=False, patience=10**6)
    return [
        ('LinearLR: step() per iteration', {
            'mmengine': LinearLR(optim_wrapper(groups), **linear).step,
            'mmlr': MmlrLinearLR(optim_wrapper(groups), **linear).step}),
        ('plateau: step() per epoch', {
            'mmengine': theirs_plateau.step, 'mmlr': ours_plateau.step}),
        ('plateau: step(metrics) per validation', {
            'mmengine': lambda: theirs_plateau.step(theirs_metrics()),
            'mmlr': lambda: ours_plateau.step(ours_metrics())}),
        ("ReduceLR('train/loss'): step() per iteration", {
            'mmlr': training.step}),
    ]


def main() -> None:
    p = _timing.parser(__doc__)
    p.add_argument('--calls', type=int, default=2000,
                   help='calls per timed sample (default 2000)')
    args = p.parse_args()
    env = _timing.setup(args)
    # Stepping schedulers without an optimizer.step() is the point here.
    warnings.filterwarnings('ignore', message='Detected call of')
    calls, rounds = (50, 3) if args.quick else (args.calls, 15)
    results = []
    for groups in GROUP_COUNTS:
        for label, arms in rows_for(groups):
            us = {k: v * 1e6 for k, v in _timing.medians(_timing.interleave(
                arms, rounds, warmup=1, repeat=calls)).items()}
            results.append(dict(
                call=label, groups=groups, us=us,
                ratio=us['mmlr'] / us['mmengine'] if 'mmengine' in us
                else None))
    table = _timing.markdown_table(
        ['call', 'groups', 'mmengine µs', 'mmlr µs', 'mmlr/mmengine',
         'mmlr µs/group'],
        [[r['call'], r['groups'], r['us'].get('mmengine', '-'),
          r['us']['mmlr'], r['ratio'] if r['ratio'] is not None else '-',
          r['us']['mmlr'] / r['groups']] for r in results])
    _timing.finish(args, 'Scheduler step() cost', env,
                   [('Median time per call', table)], dict(rows=results))


if __name__ == '__main__':
    main()
