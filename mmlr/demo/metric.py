"""Top-1 accuracy for the digits demo."""
from mmengine.evaluator import BaseMetric

from ..registry import METRICS


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-1 accuracy in percent, reported as ``accuracy/top1``.

    The key matches mmpretrain's, so configs that monitor
    ``'accuracy/top1'`` (checkpoint ``save_best``, ``ReduceLR``) port as is.

    Example:
        >>> val_evaluator = dict(type='mmlr.Accuracy')
    """

    default_prefix = 'accuracy'

    def process(self, data_batch, data_samples) -> None:
        self.results.extend(
            int(s['pred'] == s['label']) for s in data_samples)

    def compute_metrics(self, results: list) -> dict:
        return dict(top1=100.0 * sum(results) / len(results))
