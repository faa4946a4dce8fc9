"""Every layer id's learning rate, recorded for the visualisation backends."""
from mmengine.hooks import Hook, LoggerHook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict

from ..registry import HOOKS


def layer_groups(optimizer) -> dict:
    """``{layer_id: index of its first group}`` of a torch optimizer.

    :class:`~mmlr.LayerDecayOptimWrapperConstructor` puts a layer's groups
    without an lr multiplier first, so the first group of a layer id is at
    the layer's plain lr (``lr * rate ** (n - 1 - id)`` on the schedule).
    Groups without ``layer_id`` (other constructors) are left out.
    """
    first: dict = {}
    for index, group in enumerate(optimizer.param_groups):
        layer_id = group.get('layer_id')
        if layer_id is not None:
            first.setdefault(layer_id, index)
    return dict(sorted(first.items()))


@HOOKS.register_module()
class LayerLrLoggerHook(Hook):
    """Record the lr of every layer id as scalars (``lr_layer_<id>``), at the
    iterations the ``LoggerHook`` logs, for ``scalars.json``, TensorBoard,
    wandb and the other visualisation backends; not on the console line.

    mmengine logs one ``lr``: that of optimizer group 0, which
    :class:`~mmlr.LayerDecayOptimWrapperConstructor` makes a group at the
    optimizer's full lr. The decayed layers' lrs are written here, each
    layer's from its first group (the one without an lr multiplier). The
    values are those the iteration trained with (read before it, as
    mmengine reads ``lr``). mmengine's ``LogProcessor`` prints every
    ``train/`` scalar of the message hub on the console, so these go
    straight to the visualizer, one record per logged iteration with the
    same ``step``, ``iter`` and ``epoch`` as the ``LoggerHook``'s record
    (keys get ``train/`` with ``log_processor.log_with_hierarchy``, and
    ``<name>.`` per optimizer of an ``OptimWrapperDict``).

    ``tools/train.py`` adds it to every run; with another entry point add
    it to ``custom_hooks``. Without groups that carry ``layer_id`` it
    records nothing and says so once.

    Example:
        >>> custom_hooks = [dict(type='mmlr.LayerLrLoggerHook')]
    """

    priority = 'BELOW_NORMAL'

    def __init__(self):
        self._logger_hook = None
        self._layers: dict = {}  # {key prefix: (optimizer, {layer: group})}
        self._pending: dict | None = None

    def before_train(self, runner) -> None:
        # After load_or_resume: a resumed optimizer's groups are final.
        self._logger_hook = next(
            (h for h in runner.hooks if isinstance(h, LoggerHook)), None)
        wrappers = runner.optim_wrapper
        named = (wrappers.optim_wrappers.items() if isinstance(
            wrappers, OptimWrapperDict) else [('', wrappers)])
        self._layers = {}
        for name, wrapper in named:
            layers = layer_groups(wrapper.optimizer)
            if layers:
                prefix = f'{name}.' if name else ''
                self._layers[prefix] = (wrapper.optimizer, layers)
        if not self._layers:
            print_log(
                'LayerLrLoggerHook: no optimizer group carries a layer_id '
                '(they come from LayerDecayOptimWrapperConstructor), so no '
                'per-layer lr is recorded', logger='current')

    def _logs(self, runner, batch_idx: int) -> bool:
        """Whether the LoggerHook writes a record after this iteration
        (its own rule, with its own settings)."""
        hook = self._logger_hook
        if hook is None:
            return False
        return hook.every_n_inner_iters(batch_idx, hook.interval) or (
            hook.end_of_epoch(runner.train_dataloader, batch_idx) and
            (not hook.ignore_last
             or len(runner.train_dataloader) <= hook.interval))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._pending = None
        if not self._layers or not self._logs(runner, batch_idx):
            return
        hierarchy = 'train/' if getattr(
            runner.log_processor, 'log_with_hierarchy', False) else ''
        self._pending = {
            f'{hierarchy}{prefix}lr_layer_{layer}':
            optimizer.param_groups[index]['lr']
            for prefix, (optimizer, layers) in self._layers.items()
            for layer, index in layers.items()
        }

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._pending is None:
            return
        record = dict(self._pending)
        # The LoggerHook's record carries these too (LogProcessor).
        if getattr(runner.log_processor, 'by_epoch', False):
            record['epoch'] = runner.epoch + 1
        record['iter'] = runner.iter + 1
        runner.visualizer.add_scalars(
            record, step=runner.iter + 1,
            file_path=self._logger_hook.json_log_path)
        self._pending = None
