# The default demo: train a small timm ViT on scikit-learn's digits.
#   python tools/train.py configs/vit_digits.py
_base_ = [
    '_base_/models/vit_digits.py',
    '_base_/datasets/digits.py',
    '_base_/schedules/adamw_30e.py',
    '_base_/default_runtime.py',
]
