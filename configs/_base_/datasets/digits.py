# scikit-learn's 8x8 digits: 1,438 training and 359 validation images.
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    dataset=dict(type='mmlr.DigitsDataset', split='train'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=0,
    dataset=dict(type='mmlr.DigitsDataset', split='val'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)
val_evaluator = dict(type='mmlr.Accuracy')
val_cfg = dict()
