"""A timm Vision Transformer for 8x8 images, as an mmengine model."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from timm.models.vision_transformer import VisionTransformer

from ..registry import MODELS


@MODELS.register_module()
class DigitsViT(BaseModel):
    """Classify 8x8 digits with a small timm ``VisionTransformer``.

    The transformer lives in ``self.backbone`` (patch embedding, class token,
    position embedding, ``blocks``, final norm and head), so the layer-decay
    constructor and timm's ``group_matcher`` see a real ViT.

    Args:
        embed_dim (int): Token width. Defaults to 64.
        depth (int): Number of transformer blocks. Defaults to 4.
        num_heads (int): Attention heads per block. Defaults to 4.
        mlp_ratio (float): Hidden width of each MLP over ``embed_dim``.
            Defaults to 2.0.
        patch_size (int): Side of a square patch. Defaults to 2 (16 tokens).
        drop_path_rate (float): Stochastic depth. Defaults to 0.
        num_classes (int): Defaults to 10.
        **vit_kwargs: Further arguments of timm's ``VisionTransformer``
            (``proj_drop_rate``, ``attn_drop_rate``, ``global_pool`` ...).

    Example:
        >>> model = dict(type='mmlr.DigitsViT', embed_dim=64, depth=4)
    """

    def __init__(self,
                 embed_dim: int = 64,
                 depth: int = 4,
                 num_heads: int = 4,
                 mlp_ratio: float = 2.0,
                 patch_size: int = 2,
                 drop_path_rate: float = 0.0,
                 num_classes: int = 10,
                 **vit_kwargs):
        super().__init__()
        self.backbone = VisionTransformer(
            img_size=8,
            patch_size=patch_size,
            in_chans=1,
            num_classes=num_classes,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            drop_path_rate=drop_path_rate,
            **vit_kwargs)

    def forward(self,
                inputs: torch.Tensor,
                label: torch.Tensor | None = None,
                mode: str = 'tensor'):
        """Return logits (``'tensor'``), ``dict(loss=...)`` (``'loss'``) or a
        list of ``dict(pred=..., label=...)`` (``'predict'``)."""
        logits = self.backbone(inputs)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, label))
        if mode == 'predict':
            preds = logits.argmax(dim=1)
            return [
                dict(pred=int(p), label=int(t)) for p, t in zip(preds, label)
            ]
        raise ValueError(
            f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
