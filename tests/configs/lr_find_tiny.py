# The layer-decay example shrunk for the lr range test's tests: a 1-block,
# 16-wide ViT (layer ids 0 embedding, 1 block, 2 head: lr ratios 0.75 ** 2,
# 0.75, 1), no dropout.
_base_ = ['../../configs/vit_digits_layer_decay.py']

model = dict(embed_dim=16, depth=1, num_heads=2, drop_path_rate=0.0,
             proj_drop_rate=0.0, attn_drop_rate=0.0)
