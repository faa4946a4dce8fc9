# Staged fine-tuning: the head trains at its full lr from the first
# iteration while the backbone stays at lr 0 for the first epoch, then warms
# in from 0 over the second (by iteration); from epoch 2 every group decays
# on one cosine. Ramping the backbone's lr from 0 instead of freezing it
# (requires_grad) keeps DDP's gradient reduction unchanged, so this also
# runs distributed:
#   bash tools/dist_train.sh configs/vit_digits_staged_finetune.py 2
# The head is the top layer id of the layer-decay constructor (role='head'),
# the backbone everything below it (role='backbone').
# The optimizer and layer decay (0.75) are those of vit_digits_layer_decay.py.
_base_ = ['./vit_digits_layer_decay.py']

param_scheduler = [
    # backbone: factor 0 in epoch 0, 1 from epoch 1 (one stair of 1 epoch)
    dict(
        type='GroupSelect',
        groups=dict(role='backbone'),
        scheduler='mmlr.LinearLrInterval',
        start_factor=0.0,
        end_factor=1.0,
        interval=1,
        begin=0,
        end=2,
        by_epoch=True),
    # backbone: ... times a warm-up from 0 over epoch 1, by iteration
    dict(
        type='GroupSelect',
        groups=dict(role='backbone'),
        scheduler='mmlr.LinearLR',
        start_factor=0.0,
        begin=1,
        end=2,
        by_epoch=True,
        convert_to_iter_based=True),
    # every group, head included
    dict(type='CosineAnnealingLR', begin=2, by_epoch=True, eta_min=1e-5),
]
