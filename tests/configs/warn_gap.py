# The warm-up ends after epoch 1 but the cosine starts at epoch 5: nothing
# acts on iterations 45-224, the lr is held there.
_base_ = ['../../configs/vit_digits.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=5, eta_min=1e-5),
]
