# The cosine is configured for 40 epochs but training stops after 30: it
# never reaches eta_min.
_base_ = ['../../configs/vit_digits.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=40,
         eta_min=1e-5),
]
