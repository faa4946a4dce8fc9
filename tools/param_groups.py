"""Print the optimizer parameter groups a config builds: layer id, lr,
lr_scale, weight decay, tensor and element counts, example names.

    python tools/param_groups.py CONFIG [--per-param FILE.csv]
        [--device {meta,cpu}] [--cfg-options KEY=VALUE ...] [--debug]

Works with any optim-wrapper constructor: mmlr's
LayerDecayOptimWrapperConstructor reports its plan, others (mmengine's
DefaultOptimWrapperConstructor, ...) build the optimizer and the groups are
read back. The model is built on the meta device, so configs of models too
big for this machine work too. Errors in the input are one ``error:`` line
(exit code 2); ``--debug`` shows the traceback.
"""
import argparse
import os.path as osp
import sys

# Run from a source checkout without installing.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


from mmlr.cfg_options import add_cfg_options, check_config_args  # noqa: E402
from mmlr.config_build import build_model, load_config  # noqa: E402
from mmlr.launch import tool_logger  # noqa: E402
from mmlr.optim import group_report, write_param_csv  # noqa: E402
from mmlr.user_errors import (ToolArgumentParser,  # noqa: E402
                              report_user_errors)


def parse_args(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(
        description='Show which lr and weight decay each parameter of a '
        'config\'s model gets, as one line per optimizer group.',
        epilog='examples:\n'
        '  python tools/param_groups.py configs/vit_digits_layer_decay.py\n'
        '  python tools/param_groups.py configs/vit_base_mae_finetune.py '
        '--per-param vit_b_params.csv',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='path of the config file')
    parser.add_argument(
        '--per-param', metavar='FILE.csv', help='also write one row per '
        'parameter: name, shape, group, layer_id, lr, weight_decay, frozen, '
        'depth_source')
    parser.add_argument('--device', default='meta', choices=['meta', 'cpu'],
                        help='where to build the model (default: meta, '
                        'which allocates no weights; falls back to cpu)')
    add_cfg_options(parser, 'optim_wrapper.paramwise_cfg.layer_decay_rate=0.65')
    args = parser.parse_args(argv)
    check_config_args(parser, args)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    with report_user_errors(args.debug):
        show(args)


def show(args: argparse.Namespace) -> None:
    # The constructor's own INFO table would repeat the one printed here.
    tool_logger('param_groups')
    cfg = load_config(args.config, args.cfg_options)
    model, device = build_model(cfg, args.device)
    report = group_report(cfg.optim_wrapper, model)
    print(f'{osp.basename(args.config)}: {report.constructor}, model on '
          f'{device}')
    print(report.table)
    if args.per_param:
        write_param_csv(report.params, args.per_param)
        print(f'per-parameter rows: {args.per_param}')


if __name__ == '__main__':
    main()
