# Warm up for one epoch by iteration, then halve the lr whenever validation
# accuracy has not improved for 2 validations in a row.
_base_ = ['vit_digits.py']

param_scheduler = [
    dict(
        type='mmlr.LinearLR',
        start_factor=0.01,
        end=1,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='ReduceLR',
        monitor='accuracy/top1',
        mode='max',
        factor=0.5,
        patience=2,
        min_lr=1e-5,
        by_epoch=True),
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
# checks every resume against the config (tools/train.py adds it anyway)
custom_hooks = [dict(type='mmlr.SchedulerCheckHook')]
