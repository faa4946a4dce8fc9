# A 4-block, 64-wide timm ViT over 2x2 patches of the 8x8 image (16 tokens).
model = dict(
    type='mmlr.DigitsViT',
    embed_dim=64,
    depth=4,
    num_heads=4,
    mlp_ratio=2.0,
    patch_size=2,
    # 1,437 training images: regularise, or it memorises them by epoch 10.
    drop_path_rate=0.1,
    proj_drop_rate=0.1,
    attn_drop_rate=0.1,
)
