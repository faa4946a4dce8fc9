# The layer-decay example in an IterBasedTrainLoop of 24 iterations,
# with iteration-based mmengine schedulers and a checkpoint every 6.
_base_ = ['../../configs/vit_digits_layer_decay.py']

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=24,
                 val_interval=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=6, by_epoch=False),
    dict(type='CosineAnnealingLR', begin=6, eta_min=1e-5, by_epoch=False),
]
log_processor = dict(by_epoch=False)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=6, max_keep_ckpts=-1))
# An endless sampler: mmengine's IterBasedTrainLoop sleeps 2 s each time a
# finite dataloader runs out.
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
