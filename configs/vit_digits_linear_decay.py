# olm's schedule: a short warm-up, then decay linearly to 0 by the last epoch.
_base_ = ['vit_digits.py']

param_scheduler = [
    dict(
        type='mmlr.LinearLR',
        start_factor=0.01,
        end=1,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(type='LinearDecayLR', begin=1, by_epoch=True),
]
