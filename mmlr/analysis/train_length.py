"""How long a config trains: loop kind, epochs, iterations, epoch length and
when it validates, worked out as mmengine's Runner and loops do."""
import copy
import math
from dataclasses import dataclass, field
from functools import cached_property

from mmengine.config import Config
from mmengine.registry import DATASETS

from ..schedulers.resume_validation import validates_after
from ..user_errors import UserError

# The data's size where the data set is not on this machine (ImageNet
# recipes); the keys of vis_lr.py's flags, which take precedence.
DATA_SIZE_KEY = 'vis_lr_cfg'
DATA_SIZE_FIELDS = ('iters_per_epoch', 'dataset_size', 'batch_size',
                    'world_size')


@dataclass
class TrainLength:
    """The training loop's counts, in the Runner's terms: an
    ``EpochBasedTrainLoop`` (``by_epoch``) of ``max_epochs`` or an
    ``IterBasedTrainLoop`` (one epoch), ``max_iters`` in all,
    ``epoch_length`` iterations per epoch (None when unknown and not
    needed); whether it ``validates``, from epoch (iteration) ``val_begin``
    every ``val_interval``, changed by ``train_cfg.dynamic_intervals``
    (``(milestone, interval)`` pairs)."""

    by_epoch: bool
    max_epochs: int
    max_iters: int
    epoch_length: int | None
    val_begin: int = 1
    val_interval: int = 1
    validates: bool = False
    dynamic_intervals: list = field(default_factory=list)

    @cached_property
    def _rule(self) -> tuple:
        return (self.max_epochs if self.by_epoch else self.max_iters,
                self.val_begin, [0] + [m for m, _ in self.dynamic_intervals],
                [self.val_interval] + [i for _, i in self.dynamic_intervals])

    def validation_after(self, step: int) -> bool:
        """Whether the loop validates after epoch (iteration) ``step``,
        counted from 1."""
        return self.validates and validates_after(step, *self._rule)

    def validation_points(self) -> list[int]:
        """Every epoch (iteration) after which the loop validates."""
        return [step for step in range(1, self._rule[0] + 1)
                if self.validation_after(step)]


def epoch_length_of(dataset_size: int, loader_cfg: dict | None,
                    world_size: int = 1, batch_size: int | None = None
                    ) -> int:
    """``len(train_dataloader)`` on one of ``world_size`` processes, without
    loading a batch: ``DefaultSampler`` gives each ``ceil(N / world_size)``
    samples; ``drop_last`` and ``num_batch_per_epoch`` apply.

    Example:
        >>> epoch_length_of(1438, dict(batch_size=32))
        45
    """
    loader_cfg = loader_cfg or {}
    batch = batch_size or loader_cfg.get('batch_size', 1)
    per_rank = math.ceil(dataset_size / world_size)
    sampler = loader_cfg.get('batch_sampler') or {}
    drop_last = loader_cfg.get('drop_last', sampler.get('drop_last', False))
    batches = per_rank // batch if drop_last else math.ceil(per_rank / batch)
    limit = loader_cfg.get('num_batch_per_epoch')
    return min(batches, limit) if limit is not None else batches


def train_length(cfg: Config, iters_per_epoch: int | None = None,
                 dataset_size: int | None = None,
                 batch_size: int | None = None,
                 world_size: int | None = None) -> TrainLength:
    """Read ``train_cfg`` and find the epoch length the Runner would have:
    from ``iters_per_epoch``, else ``dataset_size`` (and ``batch_size``), else
    by building the training data set (only its length is read). Each
    argument left None is taken from the config's ``vis_lr_cfg``, e.g.
    ``vis_lr_cfg = dict(dataset_size=1281167, world_size=8)``.

    Args:
        cfg (Config): The config.
        iters_per_epoch (int, optional): Iterations per epoch.
        dataset_size (int, optional): Training samples.
        batch_size (int, optional): Samples per batch and process.
        world_size (int, optional): Training processes. Defaults to 1.

    Raises:
        UserError: A bad ``vis_lr_cfg``; a data set that cannot be built
            (and no size given); no ``max_epochs``/``max_iters``.
    """
    flags = {k: v for k, v in zip(DATA_SIZE_FIELDS, (
        iters_per_epoch, dataset_size, batch_size, world_size)) if v}
    given = _data_size_of(cfg)
    if {'iters_per_epoch', 'dataset_size'} & set(flags):
        given.pop('iters_per_epoch', None)
        given.pop('dataset_size', None)
    size = {**given, **flags}
    loop = dict(cfg.get('train_cfg') or {})
    by_epoch = bool(loop['by_epoch']) if 'by_epoch' in loop else (
        'max_epochs' in loop or 'Epoch' in str(loop.get('type', '')))
    loader_cfg = cfg.get('train_dataloader')
    epoch_length = size.get('iters_per_epoch')
    samples = size.get('dataset_size')
    if epoch_length is None and samples is None and loader_cfg is not None \
            and (by_epoch or _needs_epochs(cfg)):
        try:
            dataset = DATASETS.build(copy.deepcopy(loader_cfg['dataset']))
            if hasattr(dataset, 'full_init'):
                dataset.full_init()
            samples = len(dataset)
        except Exception as error:  # data missing on this machine
            raise UserError(
                f'could not build the training data set to count its '
                f'samples ({error!r}); give --iters-per-epoch, or '
                '--dataset-size (and --batch-size), or the same keys in '
                f'the config\'s {DATA_SIZE_KEY}') from error
    if epoch_length is None and samples is not None:
        epoch_length = epoch_length_of(samples, loader_cfg,
                                       size.get('world_size', 1),
                                       size.get('batch_size'))
        if epoch_length < 1:
            raise UserError(f'an epoch of {samples} samples has no '
                            'iteration')
    needed = 'max_epochs' if by_epoch else 'max_iters'
    if needed not in loop:
        raise UserError(f'train_cfg.{needed} is missing (train_cfg: {loop})')
    if by_epoch and epoch_length is None:
        raise UserError('an epoch-based loop needs the epoch length: give '
                        '--iters-per-epoch or --dataset-size')
    epochs = int(loop['max_epochs']) if by_epoch else 1
    return TrainLength(
        by_epoch, epochs, epochs * epoch_length if by_epoch else int(
            loop['max_iters']), epoch_length, loop.get('val_begin', 1),
        loop.get('val_interval', 1 if by_epoch else 1000),
        all(cfg.get(key) is not None
            for key in ('val_cfg', 'val_dataloader', 'val_evaluator')),
        _dynamic_intervals(loop.get('dynamic_intervals')))


def _data_size_of(cfg: Config) -> dict:
    given = dict(cfg.get(DATA_SIZE_KEY) or {})
    for key, value in given.items():
        if key not in DATA_SIZE_FIELDS:
            raise UserError(f'{DATA_SIZE_KEY}.{key} is not a key of '
                            f'{DATA_SIZE_KEY} (keys: '
                            f'{", ".join(DATA_SIZE_FIELDS)})')
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < 1:
            raise UserError(f'{DATA_SIZE_KEY}.{key} must be a positive '
                            f'integer, got {value!r}')
    return given


def _dynamic_intervals(pairs) -> list[tuple[int, int]]:
    # mmengine bisects the milestones, which only means something when
    # they do not decrease.
    pairs = [tuple(pair) for pair in pairs or []]
    if any(len(pair) != 2 or pair[0] < 0 or pair[1] < 1 for pair in pairs) \
            or any(a[0] > b[0] for a, b in zip(pairs, pairs[1:])):
        raise ValueError(
            'train_cfg.dynamic_intervals must be (milestone, interval) '
            'pairs with non-decreasing milestones and intervals >= 1, got '
            f'{pairs}')
    return pairs


def _needs_epochs(cfg: Config) -> bool:
    # convert_to_iter_based schedulers need the epoch length even in an
    # iteration-based loop.
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers] if 'type' in schedulers else [
            s for group in schedulers.values()
            for s in (group if isinstance(group, list) else [group])
        ]
    return any(s.get('convert_to_iter_based') for s in schedulers)
