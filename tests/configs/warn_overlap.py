# The warm-up runs 3 epochs but the cosine starts after 1: both act on
# epochs 1-2 (iterations 45-134 of the digits run), their factors multiply.
_base_ = ['../../configs/vit_digits.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, eta_min=1e-5),
]
