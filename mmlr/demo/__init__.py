"""A small, real training task that needs no download.

scikit-learn's 8x8 handwritten digits, a timm Vision Transformer sized for
them, and a top-1 accuracy metric. The example configs train it in about a
minute on two CPU cores, with real layers for layer decay to act on.
Registered in the ``mmlr`` scope only (``type='mmlr.DigitsDataset'``,
``'mmlr.DigitsViT'``, ``'mmlr.Accuracy'``): these generic names are never added
to mmengine's root registries, and plain ``import mmlr`` does not import the
demo (it pulls in timm and scikit-learn).
"""
from .dataset import DigitsDataset
from .metric import Accuracy
from .model import DigitsViT

__all__ = ['DigitsDataset', 'DigitsViT', 'Accuracy']
