# Layer-wise lr decay with parameters, gradients and optimizer state sharded
# by FSDP (mmengine's FlexibleRunner with FSDPStrategy). It needs a
# distributed launch:
#   bash tools/dist_train.sh configs/vit_digits_layer_decay_fsdp.py 2
# The groups are those of vit_digits_layer_decay.py: the constructor reads
# the original parameter names through FSDP's wrappers, which needs
# use_orig_params=True (mmengine's default for its FSDP wrapper).
_base_ = ['./vit_digits_layer_decay.py']

strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(use_orig_params=True),
    # 'local': each rank saves its shard (epoch_N.pth/rank<i>.pth);
    # 'full': rank 0 saves one file holding the whole model.
    state_dict_cfg='local',
)
