# Warm-up–stable–decay (WSD): the demo's model, data and optimizer with a
# constant lr and a cooldown over the last 20 % of the run only, so a run
# can be stopped at any checkpoint of the stable phase and cooled down, or
# extended (the cooldown follows max_epochs).
#   python tools/train.py configs/vit_digits_wsd.py
#   python tools/vis_lr.py configs/vit_digits_wsd.py
_base_ = ['vit_digits.py']

param_scheduler = [
    # warm-up: from 1 % of each group's lr to its full lr over epoch 0,
    # updated every iteration
    dict(
        type='mmlr.LinearLR',
        start_factor=0.01,
        end=1,
        by_epoch=True,
        convert_to_iter_based=True),
    # stable: nothing acts until the cooldown, every group holds its lr
    # decay: 1-sqrt over the last 20 % of the run (6 of 30 epochs), by
    # iteration, to 0 at the end of training (end defaults to max_epochs)
    dict(
        type='CooldownLR',
        shape='1-sqrt',
        fraction=0.2,
        min_lr_ratio=0.0,
        by_epoch=True,
        convert_to_iter_based=True),
]
