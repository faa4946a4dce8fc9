"""Train a model from an mmengine config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]]
                                 [--amp] [--cfg-options KEY=VALUE ...]
                                 [--launcher {none,pytorch,slurm,mpi}]
                                 [--trust-checkpoint-code] [--debug]

The flags are those of mmpretrain's and mmdet's ``tools/train.py``. Beyond
them, this script lets ``tools/dist_train.sh CONFIG N`` run on machines with
no GPU (gloo backend, DDP without device ids, FSDP on the CPU; a config
with a ``strategy`` runs in mmengine's ``FlexibleRunner``) and resumes on
torch >= 2.6 (``import mmlr`` allow-lists what mmengine checkpoints hold).
A bad config, option, launcher environment or checkpoint stops it with one
``error:`` line (exit code 2) before the Runner prints its environment,
where it can be known then; ``--debug`` shows the traceback.
"""
import argparse
import os
import os.path as osp
import sys

# Run from a source checkout without installing.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmlr.cfg_options import add_cfg_options, check_config_args  # noqa: E402
from mmlr.flexible import check_strategy_cfg  # noqa: E402
from mmlr.launch import (build_runner, check_checkpoint_inputs,  # noqa: E402
                         check_optim_wrapper_cfg, end_process_group,
                         prepare_config, summary_line)
from mmlr.user_errors import (ToolArgumentParser,  # noqa: E402
                              report_user_errors)


def parse_args(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(
        description='Train a model with mmengine (and mmlr).')
    parser.add_argument('config', help='path of the config file')
    parser.add_argument(
        '--work-dir', help='where logs and checkpoints go; defaults to '
        './work_dirs/<config name>')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the latest checkpoint of the work dir (no value or '
        '"auto") or from the given checkpoint PATH')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (needs a CUDA, NPU or MLU device)')
    add_cfg_options(parser,
                    'train_cfg.max_epochs=2 optim_wrapper.optimizer.lr=1e-3')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher for distributed training')
    parser.add_argument(
        '--trust-checkpoint-code',
        action='store_true',
        help='run even though TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set, which '
        'makes torch.load run any code a checkpoint holds; only for '
        'checkpoints whose authors you trust (without the variable, '
        'checkpoints always load as data only)')
    # torch.distributed.launch passes --local-rank (older: --local_rank)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    check_config_args(parser, args)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    with report_user_errors(args.debug):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Check the config and checkpoint inputs, train, and in a distributed
    run end the process group cleanly."""
    cfg = prepare_config(
        args.config,
        work_dir=args.work_dir,
        resume=args.resume,
        amp=args.amp,
        cfg_options=args.cfg_options,
        launcher=args.launcher)
    check_checkpoint_inputs(cfg, args.trust_checkpoint_code)
    check_optim_wrapper_cfg(cfg)
    check_strategy_cfg(cfg)
    if cfg.launcher == 'none':
        train(cfg)
        return
    try:
        train(cfg)
    except BaseException:
        # Another rank may be blocked in a collective: no barrier.
        end_process_group(all_ranks_done=False)
        raise
    end_process_group()


def train(cfg) -> None:
    """Build the Runner, train and log the summary line. The Runner is a
    local: once this returns, only its own reference cycles keep it, which
    ``end_process_group`` collects."""
    runner = build_runner(cfg)
    runner.train()
    runner.logger.info(summary_line(runner))


if __name__ == '__main__':
    main()
