# Fine-tune the digits ViT with layer-wise lr decay, MAE-style:
#   python tools/train.py configs/vit_digits_layer_decay.py \
#       --cfg-options load_from=work_dirs/vit_digits/epoch_30.pth
# Block i of the 4 gets lr * 0.75 ** (4 - i), the patch embedding and tokens
# lr * 0.75 ** 5, the head the full lr. Depths come from timm's
# group_matcher() of the ViT at model.backbone; its no_weight_decay()
# (pos_embed, cls_token) and flat_decay_mult=0 (norms, biases) leave those
# without weight decay. The build log shows the groups in one table.
_base_ = ['./vit_digits.py']

optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=2e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(layer_decay_rate=0.75, flat_decay_mult=0.0),
)
