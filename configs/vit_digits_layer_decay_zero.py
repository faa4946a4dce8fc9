# Layer-wise lr decay with mmengine's ZeroRedundancyOptimizer (ZeRO stage 1):
# each of the N processes keeps the AdamW state of about 1/N of the
# parameters. It needs a distributed launch:
#   bash tools/dist_train.sh configs/vit_digits_layer_decay_zero.py 2
# The groups are those of vit_digits_layer_decay.py. tools/train.py adds
# mmlr's ZeroCheckpointHook to distributed runs, without which mmengine 0.10.7
# deadlocks at the first checkpoint; with another entry point add
#   custom_hooks = [dict(type='mmlr.ZeroCheckpointHook')]
_base_ = ['./vit_digits_layer_decay.py']

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='ZeroRedundancyOptimizer',
        optimizer_type='AdamW',
        lr=2e-3,
        weight_decay=0.05,
        betas=(0.9, 0.999)))
