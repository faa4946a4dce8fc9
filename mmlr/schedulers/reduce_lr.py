"""``ReduceLR``: reduce the learning rate when a metric stops improving."""
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin

from ..registry import PARAM_SCHEDULERS
from .reduce import TRAIN_PREFIX, ReduceOnPlateauScheduler


@PARAM_SCHEDULERS.register_module()
class ReduceLR(LRSchedulerMixin, ReduceOnPlateauScheduler):
    """Reduce each group's lr by ``factor`` when ``monitor`` stops improving.

    PyTorch's ``ReduceLROnPlateau`` semantics with mmagic's argument names,
    stepped by mmengine's stock ``ParamSchedulerHook`` (no special hook):

    - a **validation metric** (``monitor='accuracy/top1'``) is checked after
      every validation, in epoch- and iteration-based loops (keep
      ``by_epoch=True``: mmengine passes metrics only to those); or
    - a **training scalar** the Runner logs (``monitor='train/loss'``) is
      averaged over the iterations since the last check and checked at the
      end of every epoch (``by_epoch=True``) or iteration.

    ``patience`` counts checks (validations), not epochs: the lr is reduced
    when more than ``patience`` checks in a row did not improve. Each
    reduction multiplies the current lr, so it composes with warm-ups and
    other schedulers in the list and keeps layer-decay ratios (unless a
    group hits ``min_lr``). NaN or inf counts as no improvement. A check
    counts when the epoch (iteration) just finished lies in
    ``[begin, end)``; in an ``IterBasedTrainLoop`` every validation belongs
    to epoch 0 (mmengine ends its only epoch after the last iteration).

    mmengine writes a checkpoint just before the validation of its epoch
    (iteration), so a run resumed from it loses that validation's check
    unless :class:`~mmlr.SchedulerCheckHook` runs it again (mmlr's
    ``tools/train.py`` adds the hook); without the hook such a resume logs
    one warning saying so.

    Args:
        optimizer (Optimizer | OptimWrapper): Wrapped optimizer.
        monitor (str): Validation metric key, or ``'train/<scalar>'``.
            Defaults to ``'loss'`` (mmengine's default).
        mode (str): ``'min'`` or ``'max'``. Defaults to ``'min'``.
        factor (float): Multiplier of each reduction, in (0, 1).
            Defaults to 0.1.
        patience (int): Checks without improvement tolerated. Defaults to 10.
        threshold (float): Least change that counts as improvement, >= 0.
            Defaults to 1e-4.
        threshold_mode (str): ``'rel'`` (relative to the best) or ``'abs'``.
        cooldown (int): Checks to wait after a reduction. Defaults to 0.
        min_lr (float | list[float]): Lower bound, scalar or one per param
            group. Defaults to 0.
        eps (float): Changes smaller than this are skipped. Defaults to 1e-8.
        strict (bool): A validation without ``monitor`` raises a ``KeyError``
            listing the available keys (True) or warns once (False).
        check_interval (int): For a training scalar, steps (epochs or
            iterations) between checks; ``convert_to_iter_based`` turns an
            epoch into its iterations, so patience still counts epochs.
            Defaults to 1.
        begin, end, last_step, by_epoch, verbose: As in mmengine.

    Example:
        >>> param_scheduler = [
        ...     dict(type='mmlr.LinearLR', start_factor=0.01, end=1,
        ...          by_epoch=True, convert_to_iter_based=True),
        ...     dict(type='ReduceLR', monitor='accuracy/top1', mode='max',
        ...          factor=0.5, patience=2)]
    """

    def __init__(self, optimizer, *args, min_lr: float | list = 0.0,
                 **kwargs):
        super().__init__(optimizer, *args, min_value=min_lr, **kwargs)

    @classmethod
    def build_iter_from_epoch(cls, *args, monitor: str = 'loss', **kwargs):
        if not monitor.startswith(TRAIN_PREFIX):
            raise ValueError(
                f'ReduceLR(monitor={monitor!r}) is checked at every '
                'validation, whatever the loop; drop convert_to_iter_based '
                '(it applies to training scalars such as monitor='
                f"'{TRAIN_PREFIX}loss' only)")
        kwargs.setdefault('check_interval', 1)  # one epoch, then scaled
        return super().build_iter_from_epoch(*args, monitor=monitor, **kwargs)
