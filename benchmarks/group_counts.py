"""How many optimizer groups each way of configuring layer decay gives.

With the MAE recipe (``layer_decay_rate``,
``flat_decay_mult=0.0``) mmlr merges ViT-B/16's 152 tensors into 28 groups
and ViT-L/16's 296 into 52, the same as timm's ``param_groups_layer_decay``,
while mmengine's default constructor with any ``paramwise_cfg`` (and
mmpretrain's layer-decay constructor) makes one group per tensor. Models are
built on the ``meta`` device, so this takes seconds and no memory.

    python benchmarks/group_counts.py [--quick] [--json PATH]
"""
import _timing
from vit_groups import (GROUPINGS, MAE_RATE, MODELS, QUICK_MODEL, build_vit,
                        groupings)

#: what the MAE recipe should give
EXPECTED_MMLR = {'ViT-B/16': 28, 'ViT-L/16': 52}


def count(label: str) -> dict:
    """Tensors and group counts of every grouping for one model."""
    model = build_vit(label, device='meta')
    groups = groupings(model, MAE_RATE[label])
    return dict(
        model=label,
        rate=MAE_RATE[label],
        tensors=sum(1 for p in model.parameters() if p.requires_grad),
        groups={name: len(groups[name]) for name in GROUPINGS},
        expected_mmlr=EXPECTED_MMLR.get(label))


def main() -> None:
    args = _timing.parser(__doc__).parse_args()
    env = _timing.setup(args)
    labels = [QUICK_MODEL, 'ViT-B/16'] if args.quick else list(MODELS)
    rows = [count(label) for label in labels]
    table = _timing.markdown_table(
        ['model', 'tensors', 'layer_decay_rate', 'single', 'mmlr', 'timm',
         'per-tensor (mmengine)', 'expected mmlr'],
        [[r['model'], r['tensors'], r['rate'], r['groups']['single'],
          r['groups']['mmlr'], r['groups']['timm'],
          r['groups']['per_tensor'], r['expected_mmlr'] or '-']
         for r in rows])
    _timing.finish(args, 'Parameter groups (MAE recipe)', env,
                   [('Group counts', table)], dict(rows=rows))
    wrong = [r['model'] for r in rows
             if r['expected_mmlr'] not in (None, r['groups']['mmlr'])]
    if wrong:
        raise SystemExit(f'unexpected mmlr group count for {wrong}')


if __name__ == '__main__':
    main()
