# 1,000,000 iterations, 30 layer ids (60 optimizer groups: decayed and
# undecayed per layer): the speed target of tools/vis_lr.py.
_base_ = ['../../configs/vit_digits_layer_decay.py']

model = dict(depth=28, embed_dim=16, num_heads=2)
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=1_000_000,
    val_interval=100_000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, end=10_000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=10_000,
         eta_min_ratio=0.01),
]
