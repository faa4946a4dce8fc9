"""How fast ``tools/vis_lr.py``'s engine draws a schedule, against stepping
the same schedulers through an mmengine Runner.

Both arms use the config's own constructor (60 optimizer groups, 30
distinct curves: ``tests/configs/vis_lr_million_iters.py``, a 28-block
layer-decay ViT with a warm-up and a cosine over 1,000,000 iterations) and
its own schedulers:

- ``mmlr.analysis``: :func:`~mmlr.analysis.simulate`, as ``vis_lr.py``
  runs it (one probe group per distinct curve).
- ``one group (floor)``: the same schedulers on a single group: what
  stepping mmengine's schedulers costs before any group is added.
- ``Runner``: what mmpretrain's ``vis_scheduler.py`` does: an
  ``IterBasedTrainLoop`` over empty batches with a model whose
  ``train_step`` does nothing, only ``ParamSchedulerHook`` plus the Runner's
  own hooks, the lr recorded after every iteration.

All run the same schedule shrunk to ``--iters`` iterations (warm-up for
the first 1 %, as over 1,000,000), round-robin;
the table gives the time per iteration, the projection to 1,000,000
iterations and the ratio. The Runner arm includes building the Runner's
loop, optimizer and schedulers (a second or two, small against its
iterations); the engine arm times ``simulate`` over freshly built
schedulers. The full mode also times ``simulate`` over the
whole 1,000,000 iterations once, and writing its CSV.

    python benchmarks/lr_curve_simulation.py --iters 12000   # minutes
    python benchmarks/lr_curve_simulation.py --quick    # seconds
"""
import tempfile
import time
import uuid

from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

import _timing
from mmlr.analysis import build_tracks, simulate, train_length, write_csv
from mmlr.analysis.schedule_build import ProbeOptimizer
from mmlr.config_build import build_model, build_optim_wrapper_of, load_config

CONFIG = str(_timing.REPO / 'tests/configs/vis_lr_million_iters.py')
FULL_ITERS = 1_000_000


class NoOpModel(BaseModel):
    """Holds the real model's parameters (so the constructor builds the
    same groups) and does nothing in ``train_step``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def train_step(self, data, optim_wrapper):
        return {}

    def forward(self, *args, **kwargs):
        return {}


class RecordLr(Hook):
    """Reads every group's lr after each iteration, as the engine does."""

    priority = 'LOWEST'

    def __init__(self):
        self.rows = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.rows.append([g['lr'] for g in
                          runner.optim_wrapper.optimizer.param_groups])


def schedule_options(iters: int) -> dict:
    """The config's shape over ``iters``: warm-up for the first 1 %, cosine
    after (the warm-up alone is cheaper to step than the cosine)."""
    warm_up = max(1, iters // 100)
    return {'train_cfg.max_iters': iters, 'param_scheduler.0.end': warm_up,
            'param_scheduler.1.begin': warm_up}


def engine_arm(options: dict, one_group: bool = False):
    """``simulate`` alone: building the model and constructor (the same in
    both arms) is left out of the timing. ``one_group`` replaces the 60
    groups by a single one (the floor: what stepping mmengine's schedulers
    costs at all)."""
    cfg = load_config(CONFIG, options)
    model, _ = build_model(cfg)
    wrapper = build_optim_wrapper_of(cfg, model)
    if one_group:
        wrapper = OptimWrapper(ProbeOptimizer(
            [dict(lr=cfg.optim_wrapper.optimizer.lr)],
            dict(lr=cfg.optim_wrapper.optimizer.lr)))
    length = train_length(cfg, None, None, None, 1)

    def run():
        # fresh schedulers each round: they keep their own progress
        tracks = build_tracks(wrapper, cfg.param_scheduler, length, 'lr',
                              merge=True)
        return simulate(tracks, length)

    return run


def runner_arm(options: dict):
    cfg = load_config(CONFIG, options)
    iters = options['train_cfg.max_iters']

    def run():
        model, device = build_model(cfg)
        if device == 'meta':  # the Runner moves the model: give it storage
            model = model.to_empty(device='cpu')
        with tempfile.TemporaryDirectory() as work_dir:
            runner = Runner(
                model=NoOpModel(model),
                work_dir=work_dir,
                experiment_name=f'bench-{uuid.uuid4().hex}',
                train_dataloader=dict(
                    dataset=list(range(iters)), batch_size=1,
                    sampler=dict(type='DefaultSampler', shuffle=False),
                    collate_fn=dict(type='pseudo_collate')),
                train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters),
                optim_wrapper=cfg.optim_wrapper,
                param_scheduler=cfg.param_scheduler,
                default_hooks=dict(
                    param_scheduler=dict(type='ParamSchedulerHook')),
                custom_hooks=[RecordLr()],
                log_level='WARNING',
                default_scope='mmengine')
            runner.train()

    return run


def main() -> None:
    p = _timing.parser(__doc__)
    p.add_argument('--iters', type=int, default=20_000,
                   help='iterations both arms run (default: 20000)')
    p.add_argument('--rounds', type=int, default=3,
                   help='timed rounds per arm (default: 3)')
    args = p.parse_args()
    if args.quick:
        args.iters, args.rounds = 300, 1
    env = _timing.setup(args)
    options = schedule_options(args.iters)
    samples = _timing.interleave(
        {'mmlr.analysis': engine_arm(options),
         'one group (floor)': engine_arm(options, one_group=True),
         'Runner': runner_arm(options)},
        rounds=args.rounds, warmup=0 if args.quick else 1)
    per_iter = {k: v / args.iters for k, v in _timing.medians(samples).items()}
    ratio = per_iter['Runner'] / per_iter['mmlr.analysis']
    rows = [[arm, us * 1e6, us * FULL_ITERS, _timing.spread(samples[arm])]
            for arm, us in per_iter.items()]
    table = _timing.markdown_table(
        ['arm', 'µs / iteration', 's per 1M iterations (projected)',
         'spread (IQR / median)'], rows)
    sections = [(f'First {args.iters} iterations, {args.rounds} rounds',
                 table + f'\n\nRunner / mmlr.analysis: **{ratio:.1f}x** '
                 '(target: >= 20x)')]
    results = dict(iters=args.iters, per_iteration_s=per_iter, ratio=ratio)
    if not args.quick:
        start = time.perf_counter()
        curves = engine_arm(schedule_options(FULL_ITERS))()
        whole = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            write_csv(curves, f'{folder}/lr.csv')
            csv_seconds = time.perf_counter() - start
        sections.append(('Whole schedule', f'`simulate` over {FULL_ITERS:,} '
                         f'iterations, 30 curves: {whole:.1f} s; its CSV '
                         f'(30 curves): {csv_seconds:.1f} s'))
        results.update(full_run_s=whole, csv_s=csv_seconds)
    _timing.finish(args, 'LR-curve simulation vs a Runner', env, sections,
                   results)


if __name__ == '__main__':
    main()
