"""Draw the learning-rate (or momentum, weight decay) curve of every
parameter group a config trains with, without training.

    python tools/vis_lr.py CONFIG [--out lr.png] [--csv lr.csv] [--log-y]
        [--size 1000x600] [--param {lr,momentum,weight_decay}]
        [--iters-per-epoch N | --dataset-size N [--batch-size B]]
        [--world-size W] [--metrics 0.5,0.6,... | FILE]
        [--cfg-options KEY=VALUE ...] [--debug]

The config's own model (on the meta device: no weights are allocated), its
optim-wrapper constructor (layer decay included) and its ``param_scheduler``
are built as the Runner builds them, then the schedulers are stepped as
mmengine's ParamSchedulerHook steps them, one probe group per distinct
curve. The tool writes a PNG, a CSV of every distinct curve's value at
every iteration (its header names the optimizer groups that follow it),
prints a summary table and warns about overlapping or missing scheduler
windows, an eta_min above a decayed group's lr, and ends beyond the run.
A config whose data set is not on this machine can name its size in
``vis_lr_cfg`` (the flags' keys). Errors in the input are one ``error:``
line (exit code 2); ``--debug`` shows the traceback.
"""
import argparse
import os
import os.path as osp
import sys
import time

# Run from a source checkout without installing.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.utils import ProgressBar  # noqa: E402

from mmlr.analysis import (build_tracks, check_schedule,  # noqa: E402
                           plateau_inputs, plot_curves, simulate,
                           summary_table, train_length, write_csv)
from mmlr.cfg_options import add_cfg_options, check_config_args  # noqa: E402
from mmlr.config_build import (build_model,  # noqa: E402
                               build_optim_wrapper_of, load_config)
from mmlr.launch import tool_logger  # noqa: E402
from mmlr.user_errors import (ToolArgumentParser,  # noqa: E402
                              report_user_errors)

# Pixels per side: matplotlib allocates the whole canvas, so a typo such as
# 100000x100000 would ask for 40 GB.
MIN_SIZE, MAX_SIZE = 50, 10000


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a whole number, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(
        description='Plot each parameter group\'s learning rate over a '
        'config\'s whole training run, without training. Writes a PNG and '
        'a CSV and prints a summary and warnings.',
        epilog='examples:\n'
        '  python tools/vis_lr.py configs/vit_digits_layer_decay.py --log-y\n'
        '  python tools/vis_lr.py configs/vit_digits_plateau.py '
        '--metrics 0.5,0.7,0.8,0.8,0.8,0.79,0.81\n'
        '  python tools/vis_lr.py my_imagenet_config.py '
        '--dataset-size 1281167 --batch-size 128 --world-size 8',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='path of the config file')
    parser.add_argument(
        '--out', help='PNG to write; defaults to '
        'work_dirs/vis_lr/<config name>_<param>.png')
    parser.add_argument(
        '--csv', help='CSV of every distinct curve\'s value at every '
        'iteration, headed by the groups that follow it; defaults to the '
        'PNG path with .csv; "none" skips it')
    parser.add_argument('--param', default='lr',
                        choices=['lr', 'momentum', 'weight_decay'],
                        help='which value to draw (default: lr)')
    parser.add_argument('--log-y', action='store_true',
                        help='logarithmic value axis (layer decay spans '
                        'decades)')
    parser.add_argument('--size', default='1000x600', metavar='WxH',
                        help='picture size in pixels, each side '
                        f'{MIN_SIZE} to {MAX_SIZE} (default: 1000x600)')
    parser.add_argument(
        '--iters-per-epoch', type=positive_int, help='iterations per epoch; '
        'by default the config\'s vis_lr_cfg is read, else the training '
        'data set is built and its length divided by the batch size')
    parser.add_argument('--dataset-size', type=positive_int,
                        help='training samples (instead of building the '
                        'data set)')
    parser.add_argument('--batch-size', type=positive_int,
                        help='samples per batch and GPU (default: the '
                        'config\'s train_dataloader.batch_size)')
    parser.add_argument('--world-size', type=positive_int,
                        help='number of training processes (GPUs); each '
                        'sees 1/W of the data set per epoch (default: the '
                        'config\'s vis_lr_cfg.world_size, else 1)')
    parser.add_argument(
        '--metrics', help='validation metric values for plateau schedulers '
        '(ReduceLR): comma-separated numbers, or a file of them; one is fed '
        'at every validation the config runs (train_cfg.val_interval, '
        'val_begin)')
    parser.add_argument('--all-groups', action='store_true',
                        help='step every optimizer group, not one per '
                        'distinct value (slower; for schedulers that read '
                        'other group settings)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar on stderr')
    add_cfg_options(parser,
                    'train_cfg.max_epochs=100 param_scheduler.1.eta_min=0')
    args = parser.parse_args(argv)
    check_config_args(parser, args)
    try:
        width, _, height = args.size.lower().partition('x')
        args.size = (int(width), int(height))
    except ValueError:
        parser.error(f'--size takes WIDTHxHEIGHT in pixels, got '
                     f'{args.size!r}')
    if not all(MIN_SIZE <= side <= MAX_SIZE for side in args.size):
        parser.error(f'--size: each side must be {MIN_SIZE} to {MAX_SIZE} '
                     f'pixels, got {args.size[0]}x{args.size[1]}')
    if args.metrics:
        args.metrics = _metrics(parser, args.metrics)
    if args.iters_per_epoch is not None and args.dataset_size is not None:
        parser.error('give --iters-per-epoch or --dataset-size, not both')
    name = osp.splitext(osp.basename(args.config))[0]
    args.out = args.out or osp.join('work_dirs', 'vis_lr',
                                    f'{name}_{args.param}.png')
    if args.csv is None:
        args.csv = osp.splitext(args.out)[0] + '.csv'
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    with report_user_errors(args.debug):
        draw(args)


def draw(args: argparse.Namespace) -> None:
    # Only warnings from the build (the constructor's own group table is
    # what tools/param_groups.py prints).
    tool_logger('vis_lr')
    cfg = load_config(args.config, args.cfg_options)
    model, device = build_model(cfg)
    wrapper = build_optim_wrapper_of(cfg, model)
    length = train_length(cfg, args.iters_per_epoch, args.dataset_size,
                          args.batch_size, args.world_size)
    tracks = build_tracks(wrapper, cfg.get('param_scheduler'), length,
                          args.param, merge=not args.all_groups)

    # Short runs take milliseconds; a bar is worth it from 100k iterations.
    bar = None if args.no_progress or length.max_iters < 100_000 else \
        ProgressBar(length.max_iters, file=sys.stderr)
    last = [0]

    def progress(done: int) -> None:
        bar.update(done - last[0])
        last[0] = done

    start = time.perf_counter()
    curves = simulate(tracks, length, args.param, args.metrics,
                      progress if bar else None)
    seconds = time.perf_counter() - start
    if bar:
        sys.stderr.write('\n')

    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    plot_curves(curves, args.out, args.size, args.log_y,
                title=osp.basename(args.config))
    if args.csv != 'none':
        write_csv(curves, args.csv)
    epochs = (f'{length.max_epochs} epochs x {length.epoch_length} '
              'iterations' if length.by_epoch else
              f'{length.max_iters} iterations')
    print(f'{osp.basename(args.config)}: {epochs}; model on {device}; '
          f'{len(curves.group_of)} groups, {len(curves.labels)} distinct '
          f'curves; simulated in {seconds:.2f} s')
    if curves.validations and args.metrics:
        print(f'validations after iterations: {_short(curves.validations)}')
    print(summary_table(curves))
    for message in check_schedule(tracks, length):
        print(f'WARNING: {message}')
    for message in plateau_inputs(tracks, length, args.metrics):
        print(f'note: {message}')
    coverage = args.metrics and metrics_coverage(args.metrics,
                                                 curves.validations)
    if coverage:
        print(f'note: {coverage}')
    print(f'picture: {args.out}' +
          (f'\nvalues: {args.csv}' if args.csv != 'none' else ''))


def _metrics(parser, text: str) -> list[float]:
    # --metrics: numbers separated by commas or white space, or a file
    if osp.isfile(text):
        with open(text) as f:
            text = f.read()
    try:
        values = [float(item) for item in text.replace(',', ' ').split()]
    except ValueError as error:
        parser.error(f'--metrics takes numbers separated by commas or '
                     f'spaces, or a file of them; {error}')
    if not values:
        parser.error('--metrics is empty')
    return values


def metrics_coverage(metrics: list[float], validations: list[int]
                     ) -> str | None:
    """What the simulation assumed where ``--metrics`` and the run's
    validations differ in number; None when every validation got one."""
    given, needed = len(metrics), len(validations)
    if given < needed:
        return (f'--metrics has {given} values for {needed} validations: '
                f'the last {needed - given} (from the one after iteration '
                f'{validations[given]} on) got no value, so plateau '
                'schedulers kept their lr there')
    if given > needed:
        return (f'--metrics has {given} values for {needed} validations: '
                f'the last {given - needed} were not used')
    return None


def _short(items: list, shown: int = 12) -> str:
    text = ', '.join(map(str, items[:shown]))
    return text + (f', ... ({len(items)} in all)' if len(items) > shown
                   else '')


if __name__ == '__main__':
    main()
