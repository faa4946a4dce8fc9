# Layer decay 0.1 over 6 layer ids: layers 0-2 start at 2e-8, 2e-7 and 2e-6,
# under the cosine's absolute eta_min=1e-5 (inherited from the base
# schedule), so annealing raises their lr (the patch embedding's 500-fold).
_base_ = ['../../configs/vit_digits_layer_decay.py']

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.1))
