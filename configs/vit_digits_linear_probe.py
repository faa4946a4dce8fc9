# Linear probing: freeze the whole digits ViT but its classifier head and
# train the head with SGD (momentum 0.9, no weight decay):
#   python tools/train.py configs/vit_digits_linear_probe.py \
#       --cfg-options load_from=work_dirs/vit_digits/epoch_30.pth
# Frozen parameters get requires_grad=False and stay out of the optimizer;
# the build log counts them.
_base_ = ['./vit_digits.py']

# A frozen feature extractor: no dropout.
model = dict(drop_path_rate=0.0, proj_drop_rate=0.0, attn_drop_rate=0.0)
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        _delete_=True, type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0),
    paramwise_cfg=dict(freeze=['backbone'], keep_trainable=['backbone.head']),
)
train_cfg = dict(max_epochs=10)
