"""What sharding buys with layer decay: memory per rank and step time of
DDP, ZeRO-1 and FSDP on 2 CPU processes.

The ViT-B/16 structure (timm, random weights) with mmpretrain's MAE
fine-tuning recipe (layer decay 0.65, no weight decay on flat tensors),
grouped by mmlr's ``LayerDecayOptimWrapperConstructor`` under each engine:

- ``DDP``: ``DistributedDataParallel``, AdamW on every rank;
- ``ZeRO-1``: DDP with torch's ``ZeroRedundancyOptimizer`` (AdamW), each
  rank keeping the optimizer state of about half the parameters;
- ``FSDP``: ``FullyShardedDataParallel`` (``use_orig_params=True``, every
  transformer block a unit, ``mmlr.wrap_module_types``), parameters,
  gradients and optimizer state sharded.

DDP and ZeRO use ``gradient_as_bucket_view=True``, so their gradients are
the DDP buckets and are counted once. Memory is counted, not sampled: the
bytes of the distinct storages that hold this rank's parameters, their
gradients (after the backward pass) and the optimizer state (after a step).
FSDP also gathers one unit's full parameters while it runs it: the largest
unit is shown. Step time (forward, backward, ``step()``) is timed
round-robin across the three engines, all built in the same 2 processes,
and given as the median relative to DDP's.

    python benchmarks/sharding_memory.py [--rounds 5] [--batch 4]
        [--quick] [--json PATH]

Not a test: ``tests/test_benchmarks.py`` runs ``--quick`` (a 4-block
32-pixel ViT, 2 rounds) and checks only that it prints the table.
"""
import json
import os
import socket
import tempfile

import _timing
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import vit_groups

ENGINES = ('DDP', 'ZeRO-1', 'FSDP')
MB = 2**20


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views of one
    flat buffer count once)."""
    seen = {}
    for tensor in tensors:
        if tensor is None:
            continue
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def build_engine(name: str, model: torch.nn.Module, rate: float):
    """``(wrapped model, optimizer)`` of engine ``name``, the groups built
    by mmlr's constructor from the wrapped model, as a Runner builds them."""
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.nn.parallel import DistributedDataParallel

    from mmlr.fsdp import wrap_module_types
    from mmlr.optim import build_constructor
    optimizer = dict(type='AdamW', lr=vit_groups.BASE_LR,
                     weight_decay=vit_groups.WEIGHT_DECAY)
    if name == 'FSDP':
        from functools import partial
        wrapped = FullyShardedDataParallel(
            model, use_orig_params=True, device_id=torch.device('cpu'),
            auto_wrap_policy=partial(wrap_module_types,
                                     module_types=('Block', )))
    else:
        wrapped = DistributedDataParallel(model,
                                          gradient_as_bucket_view=True)
    if name == 'ZeRO-1':
        optimizer = dict(type='ZeroRedundancyOptimizer',
                         optimizer_type='AdamW', lr=vit_groups.BASE_LR,
                         weight_decay=vit_groups.WEIGHT_DECAY)
    cfg = dict(constructor='LayerDecayOptimWrapperConstructor',
               optimizer=optimizer,
               paramwise_cfg=vit_groups.mae_paramwise_cfg(rate))
    return wrapped, build_constructor(cfg)(wrapped).optimizer


def largest_fsdp_unit(model) -> int:
    """Bytes of the largest FSDP unit's full (gathered) parameters."""
    sizes = [0]
    for module in model.modules():
        flat = getattr(getattr(module, '_handle', None), 'flat_param', None)
        if flat is not None:
            sizes.append(flat._unpadded_unsharded_size.numel() *
                         flat.element_size())
    return max(sizes)


def worker(rank: int, port: int, args, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    _timing.quiet_mmengine()
    label = vit_groups.QUICK_MODEL if args.quick else 'ViT-B/16'
    rate = vit_groups.MAE_RATE[label]
    size = 32 if args.quick else 224
    generator = torch.Generator().manual_seed(rank)
    images = torch.randn(args.batch, 3, size, size, generator=generator)
    labels = torch.randint(0, 10, (args.batch, ), generator=generator)
    engines, report = {}, {}
    for name in ENGINES:
        torch.manual_seed(0)
        model, optimizer = build_engine(name, vit_groups.build_vit(label),
                                        rate)
        params = [p for p in model.parameters()]

        def step(model=model, optimizer=optimizer, params=params):
            loss = torch.nn.functional.cross_entropy(
                model(images)[:, :10], labels)
            loss.backward()
            grads = storage_bytes(p.grad for p in params)
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)
            return grads

        grads = step()  # the first step creates AdamW's state
        local = getattr(optimizer, 'optim', optimizer)  # ZeRO's own shard
        state = storage_bytes(t for s in local.state.values()
                              for t in s.values()
                              if isinstance(t, torch.Tensor) and t.dim())
        report[name] = dict(
            groups=len(optimizer.param_groups),
            params_mb=storage_bytes(params) / MB, grads_mb=grads / MB,
            state_mb=state / MB,
            gathered_mb=largest_fsdp_unit(model) / MB)
        engines[name] = step
    samples = _timing.interleave(engines, rounds=args.rounds, warmup=1)
    times = _timing.medians(samples)
    for name in ENGINES:
        report[name]['step_s'] = times[name]
        report[name]['step_spread'] = _timing.spread(samples[name])
    if rank == 0:
        with open(out, 'w') as f:
            json.dump(dict(model=label, report=report), f)
    dist.barrier()
    dist.destroy_process_group()


def megabytes(value: float) -> str:
    return f'{value:.0f}' if value >= 10 else f'{value:.3g}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main() -> None:
    parser = _timing.parser(__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=5,
                        help='timed training steps per engine (default 5)')
    parser.add_argument('--batch', type=int, default=4,
                        help='images per rank and step (default 4)')
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.batch = 2, 2
    env = _timing.setup(args)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, 'rank0.json')
        # fork: the workers inherit this module (run as a script) as is
        mp.start_processes(worker, args=(free_port(), args, out), nprocs=2,
                           start_method='fork')
        with open(out) as f:
            result = json.load(f)
    report = result['report']
    ddp = report['DDP']
    ddp_total = ddp['params_mb'] + ddp['grads_mb'] + ddp['state_mb']
    rows = []
    for name in ENGINES:
        r = report[name]
        total = r['params_mb'] + r['grads_mb'] + r['state_mb']
        rows.append([
            name, r['groups'], megabytes(r['params_mb']),
            megabytes(r['grads_mb']), megabytes(r['state_mb']),
            megabytes(total), total / ddp_total,
            megabytes(r['gathered_mb']) if name == 'FSDP' else '-',
            r['step_s'] / ddp['step_s'], f"{r['step_spread']:.0%}"
        ])
    table = _timing.markdown_table([
        'engine', 'groups', 'parameters MB / rank', 'gradients MB / rank',
        'optimizer state MB / rank', 'total MB / rank', 'total vs DDP',
        'largest gathered unit MB', 'step time vs DDP', 'step spread (IQR)'
    ], rows)
    rate = vit_groups.MAE_RATE[result['model']]
    _timing.finish(
        args, 'Memory per rank and step time: DDP, ZeRO-1, FSDP', env,
        [(f"{result['model']}, layer decay {rate}"
          f', AdamW, 2 processes, batch {args.batch} per rank, '
          f'{args.rounds} rounds (DDP step: {ddp["step_s"]:.3g} s)', table)],
        dict(model=result['model'], batch=args.batch, rounds=args.rounds,
             report=report))


if __name__ == '__main__':
    main()
