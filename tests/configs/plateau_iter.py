# The plateau example in an IterBasedTrainLoop, validating every 20 iterations.
_base_ = ['../../configs/vit_digits_plateau.py']

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=140,
                 val_interval=20)
log_processor = dict(by_epoch=False)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False))
model = dict(drop_path_rate=0.0, proj_drop_rate=0.0, attn_drop_rate=0.0)
# An endless sampler: mmengine's IterBasedTrainLoop sleeps 2 s each time a
# finite dataloader runs out.
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
