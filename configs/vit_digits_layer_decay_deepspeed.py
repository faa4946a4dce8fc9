# Layer-wise lr decay with DeepSpeed ZeRO stage 2, through mmengine's
# FlexibleRunner (a config with a `strategy` runs in it): each of the N
# processes keeps the AdamW state and the gradients of about 1/N of the
# parameters. It needs a distributed launch and `pip install mmlr[deepspeed]`:
#   bash tools/dist_train.sh configs/vit_digits_layer_decay_deepspeed.py 2
# The groups are those of vit_digits_layer_decay.py: mmengine builds the
# optimizer from optim_wrapper and hands it to DeepSpeed, so the DeepSpeed
# config sets no optimizer or scheduler of its own (refused if it does).
# tools/train.py runs the strategy as mmlr.deepspeed_strategy describes
# (DeepSpeed 0.19, CPU processes, weights_only checkpoint loads).
_base_ = ['./vit_digits_layer_decay.py']

strategy = dict(
    type='DeepSpeedStrategy',
    zero_optimization=dict(stage=2),
    # DeepSpeed 0.19 clips the gradient norm to 1.0 unless told otherwise;
    # 0 trains as vit_digits_layer_decay.py does (no clipping).
    gradient_clipping=0.0)
optim_wrapper = dict(type='DeepSpeedOptimWrapper')
