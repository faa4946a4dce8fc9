"""Find a learning rate for a config: the lr range test.

    python tools/lr_find.py CONFIG [--start-lr 1e-7] [--end-lr 10]
        [--num-iters 200] [--smoothing 0.98] [--diverge-factor 4]
        [--out lr_find.png] [--csv lr_find.csv]
        [--cfg-options KEY=VALUE ...] [--debug]

The config's model, training data and optim wrapper (its constructor,
layer decay included) are built by an mmengine Runner as for training, in a
temporary work dir; then the model trains ``--num-iters`` iterations while
the lr grows exponentially from ``--start-lr`` to ``--end-lr``. The lr
named is the optimizer's own (``optim_wrapper.optimizer.lr``); every other
group keeps its ratio to it (layer decay, ``lr_mult``). The config's
``param_scheduler`` is not applied. The smoothed loss is recorded and the
test stops early once it exceeds ``--diverge-factor`` times its minimum.

The tool prints the suggested lr (a tenth of the lr at the lowest smoothed
loss, see ``mmlr/lr_find/suggestion.py``) and the line
to paste into the config or the command line, and draws the loss against
the lr into a PNG. Nothing is written into the config's work dir, no
checkpoint is saved and the weights on disk (``load_from``) are only read.
Errors in the input are one ``error:`` line (exit code 2); ``--debug``
shows the traceback.
"""
import argparse
import csv
import os
import os.path as osp
import sys

# Run from a source checkout without installing.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmlr.cfg_options import add_cfg_options, check_config_args  # noqa: E402
from mmlr.launch import prepare_config, tool_logger  # noqa: E402
from mmlr.lr_find import (exponential_lrs, plot_range_test,  # noqa: E402
                          run_range_test, suggest_lr, training_parts)
from mmlr.user_errors import (ToolArgumentParser,  # noqa: E402
                              report_user_errors)


def positive_float(text: str) -> float:
    """argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a number, got {text!r}') from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be above 0, got {value}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(
        description='lr range test: train a few iterations of a config '
        'with an exponentially growing lr (every optimizer group keeps its '
        'ratio to optimizer.lr), plot the loss against the lr and suggest '
        'an lr: a tenth of the lr at the lowest smoothed loss. Nothing of '
        'the run is kept: no checkpoint, nothing in the config\'s work dir, '
        'the weights on disk only read.',
        epilog='examples:\n'
        '  python tools/lr_find.py configs/vit_digits.py\n'
        '  python tools/lr_find.py configs/vit_digits_layer_decay.py '
        '--start-lr 1e-6 --end-lr 1 --num-iters 300',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='path of the config file')
    parser.add_argument('--start-lr', type=positive_float, default=1e-7,
                        help='optimizer lr of the first iteration '
                        '(default: 1e-7)')
    parser.add_argument('--end-lr', type=positive_float, default=10.0,
                        help='optimizer lr of the last iteration '
                        '(default: 10)')
    # 25 iterations per decade of the default range: with fewer, the loss
    # has no time to respond to each lr and the curve is flat noise.
    parser.add_argument('--num-iters', type=int, default=200,
                        help='iterations (optimizer steps) from --start-lr '
                        'to --end-lr, at least 2 (default: 200)')
    parser.add_argument('--smoothing', type=float, default=0.98,
                        help='weight of the past in the moving average of '
                        'the loss, in [0, 1); 0 keeps the raw loss '
                        '(default: 0.98)')
    parser.add_argument('--diverge-factor', type=float, default=4.0,
                        help='stop once the smoothed loss exceeds this '
                        'many times its minimum, above 1; 0 never stops '
                        'early (default: 4)')
    parser.add_argument('--out', help='PNG to write; defaults to '
                        'work_dirs/lr_find/<config name>.png')
    parser.add_argument('--csv', help='CSV of iteration, lr, loss, '
                        'smoothed loss; defaults to the PNG path with '
                        '.csv; "none" skips it')
    add_cfg_options(parser, 'optim_wrapper.paramwise_cfg.layer_decay_rate=0.65'
                    ' train_dataloader.batch_size=64')
    args = parser.parse_args(argv)
    check_config_args(parser, args)
    if args.end_lr <= args.start_lr:
        parser.error(f'--end-lr ({args.end_lr:g}) must be above --start-lr '
                     f'({args.start_lr:g})')
    if args.num_iters < 2:
        parser.error(f'--num-iters must be at least 2, got {args.num_iters}')
    if not 0 <= args.smoothing < 1:
        parser.error(f'--smoothing must be in [0, 1), got {args.smoothing}')
    if args.diverge_factor == 0:
        args.diverge_factor = None
    elif not args.diverge_factor > 1:
        parser.error('--diverge-factor must be above 1 (or 0: never stop '
                     f'early), got {args.diverge_factor:g}')
    name = osp.splitext(osp.basename(args.config))[0]
    args.out = args.out or osp.join('work_dirs', 'lr_find', f'{name}.png')
    if args.csv is None:
        args.csv = osp.splitext(args.out)[0] + '.csv'
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    with report_user_errors(args.debug):
        find(args)


def find(args: argparse.Namespace) -> None:
    tool_logger('lr_find')
    name = osp.basename(args.config)
    cfg = prepare_config(args.config, cfg_options=args.cfg_options)
    lrs = exponential_lrs(args.start_lr, args.end_lr, args.num_iters)
    with training_parts(cfg, name) as parts:
        result = run_range_test(parts.model, parts.optim_wrapper,
                                parts.dataloader, lrs, args.smoothing,
                                args.diverge_factor)
        num_groups = len(parts.optim_wrapper.optimizer.param_groups)
    suggestion = suggest_lr(result)

    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    plot_range_test(result, suggestion, args.out, title=name)
    if args.csv != 'none':
        write_csv(result, args.csv)

    run = len(result.lrs)
    stopped = f'; stopped early: {result.stop_reason}' \
        if result.stop_reason else ''
    print(f'{name}: {run} of {result.planned_iters} iterations, lr '
          f'{result.lrs[0]:.3g} -> {result.lrs[-1]:.3g} (optimizer.lr; '
          f'{_groups(num_groups)}){stopped}')
    lowest = result.smoothed[suggestion.minimum_index]
    print(f'lowest smoothed loss {lowest:.4g} at lr '
          f'{suggestion.minimum_lr:.3g}' + (
              f'; steepest descent before it at lr '
              f'{suggestion.steepest_lr:.3g}' if suggestion.steepest_lr
              else ''))
    lr = float(f'{suggestion.lr:.2g}')
    print(f'suggested lr: {lr:g} (a tenth of the lr at the lowest smoothed '
          'loss)')
    print(f'  in the config:       optim_wrapper = dict(optimizer=dict('
          f'lr={lr:g}))')
    print(f'  on the command line: --cfg-options '
          f'optim_wrapper.optimizer.lr={lr:g}')
    print(f'picture: {args.out}' +
          (f'\nvalues: {args.csv}' if args.csv != 'none' else ''))


def _groups(count: int) -> str:
    if count == 1:
        return 'one optimizer group'
    return f'{count} groups, each keeping its ratio to it'


def write_csv(result, path: str) -> None:
    """One row per iteration: iteration, lr, loss, smoothed_loss."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['iteration', 'lr', 'loss', 'smoothed_loss'])
        for i, row in enumerate(zip(result.lrs, result.losses,
                                    result.smoothed)):
            writer.writerow([i, *(repr(value) for value in row)])


if __name__ == '__main__':
    main()
