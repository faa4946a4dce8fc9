# InternVL's "linear" recipe on the digits demo: warm up by iteration from an
# absolute warmup_lr to the base lr over 2 epochs, then decay linearly to 1 %
# of the base lr by the last epoch; written in epochs, run per iteration.
_base_ = ['vit_digits.py']

param_scheduler = [
    dict(
        type='mmlr.LinearLR',
        start_lr=1e-6,  # InternVL's WARMUP_LR, absolute
        end=2,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='LinearDecayLR',
        end_factor=0.01,  # InternVL's lr_min_rate
        begin=2,
        by_epoch=True,
        convert_to_iter_based=True),
]
