# Two schedules in one optimizer: the backbone steps down by 10x at epochs
# 20 and 27 (MultiStepLR) while the head follows a linear poly decay to 0,
# updated every iteration (mmdet/mmseg users ask for this combination).
# layer_decay_rate=1.0 gives every group its layer id without decaying:
# role='head' is the top layer id, role='backbone' every id below.
_base_ = ['./vit_digits_layer_decay.py']

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=1.0))
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
