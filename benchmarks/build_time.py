"""How long building the optim wrapper takes as models grow.

A synthetic model of 24 layers, each a run of
``Linear(8, 8)`` + ``LayerNorm(8)`` pairs (4 tensors per pair), is built
with 1k to 16k parameter tensors; three arms build an ``OptimWrapper``
(AdamW) from it, round-robin:

- ``mmlr``: :class:`LayerDecayOptimWrapperConstructor` with
  ``paramwise_cfg=dict(norm_decay_mult=0.0)`` (2 merged groups);
- ``mmlr + decay``: the same with ``layer_decay_rate=0.75`` (48 groups:
  24 layers x decay / no decay);
- ``mmengine``: ``DefaultOptimWrapperConstructor`` with the same
  ``paramwise_cfg``, one group per tensor (quadratic: torch's
  ``add_param_group`` checks every new group against all earlier ones).

An arm whose first build at a size exceeds ``--cap`` seconds is not run at
larger sizes (the table says so). Then an InternViT-6B-sized timm
``VisionTransformer(embed_dim=3200, depth=45, num_heads=25, mlp_ratio=3.5)``
is built on the ``meta`` device (no memory) and mmlr's build and group table
are timed on it, beside mmengine's build.

    python benchmarks/build_time.py              # full: ~45 s on 2 cores
    python benchmarks/build_time.py --quick      # small sizes, seconds

Target: mmlr grows linearly and takes <= 0.1 s at 8,000 tensors.
"""
import math
import time

import torch
import torch.nn as nn

import _timing

SIZES = (1000, 2000, 4000, 8000, 16000)
QUICK_SIZES = (200, 400)
DEPTH = 24
WIDTH = 8
OPTIMIZER = dict(type='AdamW', lr=1e-3, weight_decay=0.05)
ARMS = {
    'mmlr': ('mmlr', dict(norm_decay_mult=0.0)),
    'mmlr + decay': ('mmlr', dict(norm_decay_mult=0.0,
                                  layer_decay_rate=0.75)),
    'mmengine': ('mmengine', dict(norm_decay_mult=0.0)),
}


def synthetic_model(tensors: int) -> nn.Module:
    """``blocks``: 24 layers holding ``tensors / 4`` Linear+LayerNorm pairs
    between them, so the layer-decay trunk is the 24 layers."""
    pairs = tensors // 4
    per_layer = [pairs // DEPTH + (i < pairs % DEPTH) for i in range(DEPTH)]
    model = nn.Module()
    model.blocks = nn.ModuleList(
        nn.Sequential(*[m for _ in range(n)
                        for m in (nn.Linear(WIDTH, WIDTH),
                                  nn.LayerNorm(WIDTH))])
        for n in per_layer)
    return model


def builder(kind: str, paramwise_cfg: dict):
    """A function that builds the optim wrapper of ``model``."""
    if kind == 'mmlr':
        from mmlr.optim import LayerDecayOptimWrapperConstructor as cls
    else:
        from mmengine.optim import DefaultOptimWrapperConstructor as cls

    def build(model: nn.Module):
        return cls(dict(optimizer=dict(OPTIMIZER)), dict(paramwise_cfg))(model)

    return build


def scaling(sizes: tuple, rounds: int, cap: float) -> list[dict]:
    """Median build seconds of every arm at every size.

    Each arm is built once untimed-for-the-median first (warm-up). An arm
    whose warm-up build took over ``cap`` seconds keeps that one
    measurement (listed in ``single_run``) and is skipped (None) at larger
    sizes.
    """
    builders = {name: builder(*arm) for name, arm in ARMS.items()}
    for build in builders.values():
        # The first build in a process imports and registers (~1 s): not
        # part of the per-size cost.
        build(synthetic_model(DEPTH * 4))
    over_cap: set = set()
    rows = []
    for size in sizes:
        model = synthetic_model(size)
        row = dict(tensors=size, seconds={}, groups={}, single_run=[])
        for name, build in builders.items():
            if name in over_cap:
                row['seconds'][name] = None
                continue
            start = time.perf_counter()
            row['groups'][name] = len(build(model).optimizer.param_groups)
            elapsed = time.perf_counter() - start
            if elapsed > cap:
                over_cap.add(name)
                row['seconds'][name] = elapsed
                row['single_run'].append(name)
        arms = {name: (lambda b=builders[name]: b(model))
                for name in builders if name not in over_cap}
        if arms:
            row['seconds'].update(_timing.medians(
                _timing.interleave(arms, rounds, warmup=0)))
        rows.append(row)
    return rows


def exponent(rows: list[dict], name: str) -> float | None:
    """``k`` in time ~ tensors**k between the smallest and largest size
    the arm ran at (1 is linear, 2 quadratic)."""
    done = [r for r in rows if r['seconds'].get(name) is not None]
    if len(done) < 2:
        return None
    first, last = done[0], done[-1]
    return math.log(last['seconds'][name] / first['seconds'][name]) / \
        math.log(last['tensors'] / first['tensors'])


def verdict(rows: list[dict], growth: dict) -> str:
    """The growth exponents, and the targets for mmlr."""
    text = 'growth exponent k (time ~ tensors^k): ' + ', '.join(
        f'{n}: {k:.2f}' for n, k in growth.items() if k is not None) + '.'
    at_8k = next((r['seconds']['mmlr'] for r in rows
                  if r['tensors'] == 8000), None)
    if at_8k is not None:
        fast = 'met' if at_8k <= 0.1 else 'missed'
        linear = 'met' if growth['mmlr'] < 1.2 else 'missed'
        text += (f'\n\nmmlr at 8,000 tensors: {at_8k * 1e3:.3g} ms (target '
                 f'<= 100 ms: {fast}; linear growth: {linear}).')
    return text


def internvit_6b(quick: bool) -> dict:
    """Build time of an InternViT-6B-sized ViT on ``meta``, then mmlr's
    groups and table and mmengine's build on it."""
    from timm.models.vision_transformer import VisionTransformer

    from mmlr.optim import LayerDecayOptimWrapperConstructor
    from mmlr.optim.param_groups import format_table, group_rows
    size = dict(embed_dim=3200, depth=45, num_heads=25, mlp_ratio=3.5)
    if quick:
        size = dict(embed_dim=64, depth=4, num_heads=2, mlp_ratio=3.5)
    times = {}
    start = time.perf_counter()
    with torch.device('meta'):
        model = VisionTransformer(**size)
    times['model on meta'] = time.perf_counter() - start
    optim_cfg = dict(optimizer=dict(OPTIMIZER))
    paramwise_cfg = dict(layer_decay_rate=0.9, flat_decay_mult=0.0)
    constructor = LayerDecayOptimWrapperConstructor(optim_cfg, paramwise_cfg)
    start = time.perf_counter()
    groups, _, report = constructor.plan(model)
    times['mmlr groups (plan)'] = time.perf_counter() - start
    start = time.perf_counter()
    table = format_table(group_rows(groups), report)
    times['mmlr group table'] = time.perf_counter() - start
    start = time.perf_counter()
    wrapper = LayerDecayOptimWrapperConstructor(optim_cfg, paramwise_cfg)(
        model)
    times['mmlr build (OptimWrapper)'] = time.perf_counter() - start
    start = time.perf_counter()
    from mmengine.optim import DefaultOptimWrapperConstructor
    DefaultOptimWrapperConstructor(optim_cfg, dict(flat_decay_mult=0.0))(
        model)
    times['mmengine build (OptimWrapper)'] = time.perf_counter() - start
    return dict(
        size=size, params=sum(p.numel() for p in model.parameters()),
        tensors=sum(1 for _ in model.parameters()),
        groups=len(wrapper.optimizer.param_groups), seconds=times,
        table_lines=table.count('\n') + 1)


def main() -> None:
    p = _timing.parser(__doc__)
    p.add_argument('--cap', type=float, default=3.0, metavar='SECONDS',
                   help='stop timing an arm at larger sizes once one build '
                   'takes longer than this (default 3)')
    args = p.parse_args()
    env = _timing.setup(args)
    rows = scaling(QUICK_SIZES if args.quick else SIZES,
                   rounds=1 if args.quick else 5, cap=args.cap)
    names = list(ARMS)

    def cell(row: dict, name: str) -> str:
        value = row['seconds'][name]
        if value is None:
            return f'skipped (over {args.cap:g} s cap)'
        once = ' (1 run)' if name in row['single_run'] else ''
        return f'{value * 1e3:.3g}{once}'

    table = _timing.markdown_table(
        ['tensors'] + [f'{n} ms' for n in names] +
        ['groups (' + ' / '.join(names) + ')'],
        [[r['tensors']] + [cell(r, n) for n in names] +
         [' / '.join(str(r['groups'].get(n, '-')) for n in names)]
         for r in rows])
    growth = {n: exponent(rows, n) for n in names}
    summary = verdict(rows, growth)
    big = internvit_6b(args.quick)
    big_table = _timing.markdown_table(
        ['step', 'ms'], [[k, v * 1e3] for k, v in big['seconds'].items()])
    big_head = (f"{big['size']}: {big['params'] / 1e9:.2f} B parameters, "
                f"{big['tensors']} tensors, {big['groups']} mmlr groups "
                f"(layer_decay_rate=0.9, flat_decay_mult=0.0); mmengine: one "
                f"group per tensor.\n\n")
    _timing.finish(
        args, 'Building the optim wrapper', env,
        [('Synthetic stack, median build time', table + '\n\n' + summary),
         ('InternViT-6B-sized ViT on the meta device', big_head + big_table)],
        dict(scaling=rows, growth_exponent=growth, internvit_6b=big))


if __name__ == '__main__':
    main()
