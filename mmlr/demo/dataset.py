"""scikit-learn's digits as an mmengine data set."""
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import Dataset

from ..registry import DATASETS


@DATASETS.register_module()
class DigitsDataset(Dataset):
    """The 1,797 8x8 grey images of handwritten digits that scikit-learn ships.

    Each item is ``dict(inputs=Tensor[1, 8, 8], label=int)`` with pixel values
    scaled from 0..16 to -1..1. The train/val split is a fixed, seeded,
    class-stratified permutation, so every run sees the same images.

    Args:
        split (str): ``'train'`` or ``'val'``.
        val_fraction (float): Share of each class held out for validation.
            Defaults to 0.2.
        seed (int): Seed of the split. Defaults to 0.
        indices (slice | None): Keep only this slice of the split (for short
            test runs). Defaults to None.

    Example:
        >>> train_dataloader = dict(
        ...     dataset=dict(type='mmlr.DigitsDataset', split='train'), ...)
    """

    METAINFO = dict(classes=tuple(str(i) for i in range(10)))

    def __init__(self,
                 split: str = 'train',
                 val_fraction: float = 0.2,
                 seed: int = 0,
                 indices: slice | None = None):
        if split not in ('train', 'val'):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not 0 < val_fraction < 1:
            raise ValueError(
                f'val_fraction must be in (0, 1), got {val_fraction}')
        digits = load_digits()
        rng = np.random.default_rng(seed)
        chosen = []
        for label in range(10):
            members = rng.permutation(np.flatnonzero(digits.target == label))
            num_val = int(round(len(members) * val_fraction))
            chosen.append(members[:num_val] if split == 'val' else
                          members[num_val:])
        order = np.sort(np.concatenate(chosen))
        if indices is not None:
            order = order[indices]
        images = digits.images[order].astype(np.float32) / 8.0 - 1.0
        self.images = torch.from_numpy(images).unsqueeze(1)
        self.labels = torch.from_numpy(digits.target[order].astype(np.int64))
        self.metainfo = dict(self.METAINFO)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=self.images[index], label=self.labels[index])
