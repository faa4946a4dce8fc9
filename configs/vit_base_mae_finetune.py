# ViT-B/16 at 224 px with mmpretrain's MAE fine-tuning recipe
# (mae_vit-base-p16_8xb128-coslr-100e_in1k): AdamW, lr 2e-3 for a total
# batch of 1024, layer decay 0.65, no weight decay on norms, biases, tokens
# and the position embedding; 5 warm-up epochs by iteration, cosine to 1e-6
# over 100 epochs. The model is timm's vit_base_patch16_224 (random init),
# so only the tools run on it without ImageNet:
#   python tools/param_groups.py configs/vit_base_mae_finetune.py
#   python tools/vis_lr.py configs/vit_base_mae_finetune.py --log-y
from mmengine.optim import CosineAnnealingLR, LinearLR
from timm.models.vision_transformer import vit_base_patch16_224

import mmlr  # noqa: F401  (registers LayerDecayOptimWrapperConstructor)

model = dict(type=vit_base_patch16_224, pretrained=False,
             drop_path_rate=0.1, global_pool='avg')
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=2e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        custom_keys={
            '.norm': dict(decay_mult=0.0),
            '.fc_norm': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
        }),
)
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-4, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type=CosineAnnealingLR, T_max=95, by_epoch=True, begin=5, end=100,
         eta_min=1e-6, convert_to_iter_based=True),
]
train_dataloader = dict(batch_size=128)  # per GPU; 8 GPUs
train_cfg = dict(by_epoch=True, max_epochs=100)
# The recipe's data, for tools/vis_lr.py (no data set here): ImageNet-1k's
# 1,281,167 training images on 8 GPUs of 128 images each, 1,252 iterations
# per epoch. The flags of the same names override it.
vis_lr_cfg = dict(dataset_size=1281167, world_size=8)
