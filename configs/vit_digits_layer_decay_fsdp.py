# Layer-wise lr decay with parameters, gradients and optimizer state sharded
# by FSDP (mmengine's FlexibleRunner with FSDPStrategy). It needs a
# distributed launch:
#   bash tools/dist_train.sh configs/vit_digits_layer_decay_fsdp.py 2
# The groups are those of vit_digits_layer_decay.py: the constructor reads
# the original parameter names (and shapes) through FSDP's and activation
# checkpointing's wrappers, which needs use_orig_params=True (the default of
# mmengine's FSDP wrapper; False is refused with this constructor).
_base_ = ['./vit_digits_layer_decay.py']

strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        use_orig_params=True,
        # each transformer block (timm's Block) is an FSDP unit of its own
        auto_wrap_policy=dict(
            type='mmlr.wrap_module_types', module_types=['Block'])),
    # recompute each unit's activations in the backward pass
    activation_checkpointing=dict(check_fn='mmlr.is_fsdp_unit'),
    # 'local': each rank saves its shard (epoch_N.pth/rank<i>.pth);
    # 'full': rank 0 saves one file holding the whole model.
    state_dict_cfg='local',
)
