# CycleGAN-style: hold the lr for 15 epochs, then decay it to 0 in stairs of
# 3 epochs (written in epochs, run per iteration).
_base_ = ['vit_digits.py']

param_scheduler = [
    dict(
        type='LinearLrInterval',
        start_factor=1.0,
        end_factor=0.0,
        interval=3,
        begin=15,
        by_epoch=True,
        convert_to_iter_based=True),
]
