# Two schedules in one optimizer: the backbone steps down by 10x at epochs
# 20 and 27 (MultiStepLR) while the head follows a linear poly decay to 0,
# updated every iteration (mmdet/mmseg users ask for this combination).
# layer_decay_rate=1.0 gives every group its layer id without decaying:
# role='head' is the top layer id, role='backbone' every id below.
_base_ = ['./vit_digits.py']

optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=2e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(layer_decay_rate=1.0, flat_decay_mult=0.0),
)
param_scheduler = [
    dict(
        type='GroupSelect',
        groups=dict(role='backbone'),
        scheduler='MultiStepLR',
        milestones=[20, 27],
        gamma=0.1,
        by_epoch=True),
    dict(
        type='GroupSelect',
        groups=dict(role='head'),
        scheduler='PolyLR',
        power=1.0,
        eta_min=0.0,
        by_epoch=True,
        convert_to_iter_based=True),
]
