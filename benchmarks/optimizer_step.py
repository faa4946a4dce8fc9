"""What the grouping of parameters costs at every ``optimizer.step()``.

For timm ViT-B/16 and ViT-L/16 (``pretrained=False``),
AdamW and SGD (momentum 0.9), and the three ways torch can run an optimizer
(default, which on CPU is the per-tensor for-loop; ``foreach=True``;
``fused=True``), times one step with four groupings of the same tensors:
one group, mmlr's layer-decay groups (MAE recipe), timm's
``param_groups_layer_decay``, and one group per tensor (mmengine's default
constructor with a ``paramwise_cfg``). See ``vit_groups.py``.

Two structures: the real weights (memory-bound on a CPU), and the same
tensors shrunk to 16 elements each, where the step is all per-group and
per-tensor overhead -- the regime of a GPU, whose math is cheap.

The four groupings of one (model, structure, optimizer, mode) cell are
stepped round-robin on the same tensors and the same gradients; they share
one optimizer state (it is keyed by tensor, and its values do not change
the cost), so ViT-L with AdamW needs ~5 GB instead of ~12 GB.

    python benchmarks/optimizer_step.py              # full: ~5 min on 2 cores
    python benchmarks/optimizer_step.py --quick      # a tiny ViT, seconds
    python benchmarks/optimizer_step.py --json out.json --models ViT-B/16

Targets, on the shrunk structure: per-tensor / mmlr >= 1.5x with
foreach and with fused, mmlr / timm <= 1.02x; on real weights mmlr / single
<= 1.05x in every mode.
"""
import argparse
import gc
from collections import defaultdict

import torch
import torch.nn as nn

import _timing
from vit_groups import (GROUPINGS, MAE_RATE, MODELS, QUICK_MODEL, build_vit,
                        groupings)

MODES = {'default': {}, 'foreach': dict(foreach=True),
         'fused': dict(fused=True)}
OPTIMIZERS = ('AdamW', 'SGD')
SHRUNK_ELEMENTS = 16


def make_optimizer(kind: str, mode: str,
                   groups: list[dict]) -> torch.optim.Optimizer:
    """``kind`` (AdamW or SGD with momentum 0.9) over copies of ``groups``."""
    groups = [dict(g, params=list(g['params'])) for g in groups]
    if kind == 'AdamW':
        return torch.optim.AdamW(groups, **MODES[mode])
    return torch.optim.SGD(groups, lr=0.01, momentum=0.9, **MODES[mode])


def shrink(groups: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The same groupings over 16-element stand-ins, one per tensor."""
    small: dict[int, nn.Parameter] = {}
    for param in groups['single'][0]['params']:
        stand_in = nn.Parameter(torch.randn(SHRUNK_ELEMENTS))
        stand_in.grad = torch.randn(SHRUNK_ELEMENTS)
        small[id(param)] = stand_in
    return {
        name: [dict(g, params=[small[id(p)] for p in g['params']])
               for g in grouping]
        for name, grouping in groups.items()
    }


def time_cell(groups: dict[str, list[dict]], kind: str, mode: str,
              rounds: int, repeat: int,
              warmup: int) -> dict[str, list[float]]:
    """Seconds per step of each grouping, interleaved round-robin."""
    optimizers = {name: make_optimizer(kind, mode, g)
                  for name, g in groups.items()}
    shared = defaultdict(dict)
    for optimizer in optimizers.values():
        optimizer.state = shared
    arms = {name: opt.step for name, opt in optimizers.items()}
    return _timing.interleave(arms, rounds, warmup, repeat)


def summarise(label: str, structure: str, kind: str, mode: str,
              samples: dict, counts: dict) -> dict:
    """Medians, ratios and the per-group cost of one cell."""
    ms = {k: v * 1e3 for k, v in _timing.medians(samples).items()}

    def per_group_us(name: str) -> float:
        extra = counts[name] - counts['single']
        return (ms[name] - ms['single']) * 1e3 / extra

    return dict(
        model=label, structure=structure, optimizer=kind, mode=mode,
        ms=ms, spread={k: _timing.spread(v) for k, v in samples.items()},
        mmlr_over_single=ms['mmlr'] / ms['single'],
        mmlr_over_timm=ms['mmlr'] / ms['timm'],
        per_tensor_over_mmlr=ms['per_tensor'] / ms['mmlr'],
        us_per_group_mmlr=per_group_us('mmlr'),
        us_per_group_per_tensor=per_group_us('per_tensor'))


def run_model(label: str, args: argparse.Namespace) -> list[dict]:
    """Every selected cell of one model; shrunk first (built on ``meta``, no
    memory), then the real weights."""
    quick = args.quick
    rate, results = MAE_RATE[label], []
    for structure in args.structures:
        if structure == 'shrunk':
            groups = shrink(groupings(build_vit(label, 'meta'), rate))
            rounds, repeat = (2, 2) if quick else (25, 20)
        else:
            model = build_vit(label)
            for p in model.parameters():
                p.grad = torch.randn_like(p)
            groups = groupings(model, rate)
            rounds, repeat = (2, 1) if quick else (
                5 if label == 'ViT-L/16' else 9, 1)
        rounds = args.rounds or rounds
        counts = {name: len(g) for name, g in groups.items()}
        for kind in args.optimizers:
            for mode in args.modes:
                samples = time_cell(groups, kind, mode, rounds, repeat,
                                    warmup=1 if quick else 2)
                cell = summarise(label, structure, kind, mode, samples,
                                 counts)
                results.append(dict(cell, groups=counts))
                gc.collect()
        del groups
        gc.collect()
    return results


def timing_table(cells: list[dict]) -> str:
    """One row per cell: medians, ratios, per-group cost."""
    rows = [[
        c['model'], c['structure'], c['optimizer'], c['mode'],
        f"{c['groups']['mmlr']}/{c['groups']['per_tensor']}",
        *(c['ms'][g] for g in GROUPINGS), c['mmlr_over_single'],
        c['mmlr_over_timm'], c['per_tensor_over_mmlr'],
        *((c['us_per_group_mmlr'], c['us_per_group_per_tensor'])
          if c['structure'] == 'shrunk' else ('-', '-'))
    ] for c in cells]
    return _timing.markdown_table(
        ['model', 'weights', 'optimizer', 'mode', 'groups mmlr/per-tensor',
         'single ms', 'mmlr ms', 'timm ms', 'per-tensor ms', 'mmlr/single',
         'mmlr/timm', 'per-tensor/mmlr', 'µs/group mmlr (shrunk)',
         'µs/group per-tensor (shrunk)'], rows)


def targets(cells: list[dict]) -> list[dict]:
    """Each target checked on every cell it applies to."""
    checks = []
    for c in cells:
        where = f"{c['model']} {c['structure']} {c['optimizer']} {c['mode']}"
        if c['structure'] == 'shrunk':
            if c['mode'] != 'default':
                checks.append(dict(where=where, what='per-tensor/mmlr >= 1.5',
                                   value=c['per_tensor_over_mmlr'],
                                   met=c['per_tensor_over_mmlr'] >= 1.5))
            checks.append(dict(where=where, what='mmlr/timm <= 1.02',
                               value=c['mmlr_over_timm'],
                               met=c['mmlr_over_timm'] <= 1.02))
        else:
            checks.append(dict(where=where, what='mmlr/single <= 1.05',
                               value=c['mmlr_over_single'],
                               met=c['mmlr_over_single'] <= 1.05))
    return checks


def main() -> None:
    p = _timing.parser(__doc__)
    p.add_argument('--models', nargs='+', choices=list(MODELS),
                   default=list(MODELS), help='models to time (full mode)')
    p.add_argument('--structures', nargs='+', choices=['shrunk', 'real'],
                   default=['shrunk', 'real'], help='weights to time')
    p.add_argument('--optimizers', nargs='+', choices=OPTIMIZERS,
                   default=list(OPTIMIZERS), help='optimizers to time')
    p.add_argument('--modes', nargs='+', choices=list(MODES),
                   default=list(MODES), help='torch implementations to time')
    p.add_argument('--rounds', type=int, metavar='N',
                   help='timed rounds per cell (default: 25 shrunk, 9 '
                   'ViT-B real, 5 ViT-L real)')
    args = p.parse_args()
    env = _timing.setup(args)
    labels = [QUICK_MODEL] if args.quick else args.models
    cells = [c for label in labels
             for c in run_model(label, args)]
    checks = targets(cells)
    missed = [c for c in checks if not c['met']]
    summary = ('(--quick: a tiny model, the numbers mean nothing)\n\n'
               if args.quick else '')
    summary += (f'{len(checks) - len(missed)} of {len(checks)} met' +
               ''.join(f"\n- missed: {c['where']}: {c['what']} "
                       f"(measured {c['value']:.3f})" for c in missed))
    _timing.finish(
        args, 'optimizer.step() by grouping', env,
        [('Median time per step', timing_table(cells)),
         ('Targets', summary)],
        dict(cells=cells, targets=checks))


if __name__ == '__main__':
    main()
