"""A compact vision transformer with per-block head/neuron masks and physical pruning (ED-ViT).

Layout: images ``(B, C, H, W)`` → non-overlapping ``patch × patch`` patches embedded by a strided
convolution → ``(B, N, D)`` tokens with a learned CLS token prepended and learned position
embeddings → ``depth`` pre-LayerNorm blocks (multi-head self-attention, GELU MLP) → final
LayerNorm → the CLS embedding ``(B, D)`` → linear head ``(B, K)``.

Blocks may differ in width: ``n_heads`` and ``mlp_hidden`` accept one value per block, which is
how a physically pruned model (fewer heads / MLP neurons in some blocks) is described and rebuilt
from a checkpoint manifest. ``head_masks`` / ``neuron_masks`` passed to :meth:`forward` zero a
head's output or a neuron's activation; :meth:`VisionTransformer.prune` removes them for real
(Q/K/V rows + out-projection columns; fc1 rows + fc2 columns), which gives the same outputs.
Masks are arguments, never module attributes, and are differentiable, so Taylor importance
scores are ``|∂loss/∂mask|``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from edgestream.core.checks import check_number, fail
from edgestream.core.errors import DataError
from edgestream.models.registry import register_model

Masks = Sequence[torch.Tensor | None] | None


def _per_block(value: int | Sequence[int], depth: int, name: str) -> list[int]:
    values = [int(value)] * depth if isinstance(value, (int,)) else [int(v) for v in value]
    if len(values) != depth:
        fail(name, f"give one value per block ({depth})", list(values), "Pass an int or a list of length depth.")
    for v in values:
        check_number(v, name, low=0, integer=True)
    return values


@contextlib.contextmanager
def _quiet_empty() -> Iterator[None]:
    """Silence torch's warning for zero-sized layers (a block whose heads/neurons were all pruned)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Initializing zero-element")
        yield


class Attention(nn.Module):
    """Multi-head self-attention whose heads can be masked or removed.

    ``qkv.weight`` rows are laid out ``(3, n_heads, head_dim)`` (q, k, v blocks; head-major
    inside each), ``proj.weight`` columns ``(n_heads, head_dim)``.
    """

    def __init__(self, dim: int, n_heads: int, head_dim: int, *, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        with _quiet_empty():
            self.qkv = nn.Linear(dim, 3 * n_heads * head_dim, device=device, dtype=dtype)
            self.proj = nn.Linear(n_heads * head_dim, dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, head_mask: torch.Tensor | None = None) -> torch.Tensor:  # (B, N, D)
        b, n, _ = x.shape
        if self.n_heads == 0:  # every head pruned: the block only adds the out-projection bias
            return self.proj.bias.expand(b, n, -1)
        qkv = self.qkv(x).reshape(b, n, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, N, hd)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, H, N, hd)
        if head_mask is not None:
            out = out * head_mask.to(out.dtype).view(1, -1, 1, 1)
        return self.proj(out.transpose(1, 2).reshape(b, n, self.n_heads * self.head_dim))


class Mlp(nn.Module):
    """fc1 → GELU → (neuron mask) → fc2."""

    def __init__(self, dim: int, hidden: int, *, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        with _quiet_empty():
            self.fc1 = nn.Linear(dim, hidden, device=device, dtype=dtype)
            self.fc2 = nn.Linear(hidden, dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, neuron_mask: torch.Tensor | None = None) -> torch.Tensor:  # (B, N, D)
        h = F.gelu(self.fc1(x))  # (B, N, M)
        if neuron_mask is not None:
            h = h * neuron_mask.to(h.dtype)
        return self.fc2(h)


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, mlp_hidden: int, *, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, device=device, dtype=dtype)
        self.attn = Attention(dim, n_heads, head_dim, device=device, dtype=dtype)
        self.norm2 = nn.LayerNorm(dim, device=device, dtype=dtype)
        self.mlp = Mlp(dim, mlp_hidden, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, head_mask: torch.Tensor | None = None, neuron_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), head_mask)
        return x + self.mlp(self.norm2(x), neuron_mask)


class VisionTransformer(nn.Module):
    """Compact ViT: patch embedding, CLS token, pre-LN blocks, linear head.

    Parameters
    ----------
    img_size : int
        Input height and width in pixels (square images).
    patch_size : int
        Patch side in pixels; must divide ``img_size``.
    in_chans : int
        Image channels (1 grey, 3 RGB).
    n_classes : int
        Output logits K.
    dim : int
        Embedding width D (kept by pruning).
    depth : int
        Number of blocks.
    n_heads : int or list of int
        Attention heads per block (a list after pruning; 0 allowed).
    head_dim : int or None
        Width of one head; default ``dim // n_heads`` of the unpruned model.
    mlp_hidden : int or list of int
        MLP neurons per block (a list after pruning; 0 allowed).
    """

    def __init__(
        self,
        img_size: int = 28,
        patch_size: int = 4,
        in_chans: int = 1,
        n_classes: int = 10,
        dim: int = 64,
        depth: int = 4,
        n_heads: int | Sequence[int] = 4,
        head_dim: int | None = None,
        mlp_hidden: int | Sequence[int] = 128,
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        check_number(img_size, "img_size", low=1, integer=True)
        check_number(patch_size, "patch_size", low=1, high=img_size, integer=True)
        if img_size % patch_size:
            fail("patch_size", f"divide img_size ({img_size})", patch_size, "Pick a patch size that tiles the image.")
        check_number(dim, "dim", low=1, integer=True)
        check_number(depth, "depth", low=1, integer=True)
        heads = _per_block(n_heads, depth, "n_heads")
        hidden = _per_block(mlp_hidden, depth, "mlp_hidden")
        if head_dim is None:
            if not isinstance(n_heads, int) or n_heads < 1 or dim % n_heads:
                fail("head_dim", "be given when n_heads is a list or does not divide dim", head_dim, "Pass head_dim=dim // heads.")
            head_dim = dim // n_heads
        check_number(head_dim, "head_dim", low=1, integer=True)
        self.config = {
            "img_size": img_size, "patch_size": patch_size, "in_chans": in_chans, "n_classes": n_classes,
            "dim": dim, "depth": depth, "n_heads": heads, "head_dim": int(head_dim), "mlp_hidden": hidden,
        }
        self.img_size, self.patch_size, self.in_chans, self.dim = img_size, patch_size, in_chans, dim
        self.n_patches = (img_size // patch_size) ** 2
        kw = {"device": device, "dtype": dtype}
        self.patch_embed = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size, **kw)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, **kw))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.n_patches + 1, dim, **kw))
        self.blocks = nn.ModuleList(Block(dim, h, int(head_dim), m, **kw) for h, m in zip(heads, hidden))
        self.norm = nn.LayerNorm(dim, **kw)
        self.head = nn.Linear(dim, n_classes, **kw)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    # --- shapes --------------------------------------------------------------------------
    @property
    def n_heads(self) -> list[int]:
        return list(self.config["n_heads"])

    @property
    def mlp_hidden(self) -> list[int]:
        return list(self.config["mlp_hidden"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return (self.in_chans, self.img_size, self.img_size)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def size_bytes(self, bytes_per_param: int = 4) -> int:
        """Parameter memory (float32 by default): what the ED-ViT planner budgets."""
        return self.n_params() * bytes_per_param

    def flops(self) -> int:
        """Multiply-adds × 2 for one image (matmuls only; norms and softmax are negligible)."""
        n, d, hd = self.n_patches + 1, self.dim, self.config["head_dim"]
        total = 2 * self.n_patches * d * self.in_chans * self.patch_size**2
        for h, m in zip(self.n_heads, self.mlp_hidden):
            total += 2 * n * d * 3 * h * hd + 2 * 2 * n * n * h * hd + 2 * n * h * hd * d + 2 * 2 * n * d * m
        return total + 2 * d * self.config["n_classes"]

    # --- forward -------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise DataError(
                f"images must have shape (B, {self.in_chans}, {self.img_size}, {self.img_size}); got "
                f"{tuple(x.shape)}. Resize/greyscale frames to the model's input (see the camera source's size/grey)."
            )

    def forward_features(self, x: torch.Tensor, head_masks: Masks = None, neuron_masks: Masks = None) -> torch.Tensor:
        """CLS embedding after the final norm, ``(B, D)``."""
        self._check_input(x)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed  # (B, N+1, D)
        for i, block in enumerate(self.blocks):
            hm = head_masks[i] if head_masks is not None else None
            nm = neuron_masks[i] if neuron_masks is not None else None
            tokens = block(tokens, hm, nm)
        return self.norm(tokens[:, 0])

    def forward(self, x: torch.Tensor, head_masks: Masks = None, neuron_masks: Masks = None) -> torch.Tensor:
        """Logits ``(B, K)`` for images ``(B, C, H, W)``; masks hold one ``(H_b,)``/``(M_b,)`` tensor per block."""
        return self.head(self.forward_features(x, head_masks, neuron_masks))

    def ones_masks(self, requires_grad: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """All-ones head and neuron masks (the dense model), optionally tracking gradients."""
        ref = self.head.weight
        heads = [torch.ones(h, device=ref.device, dtype=ref.dtype, requires_grad=requires_grad) for h in self.n_heads]
        neurons = [torch.ones(m, device=ref.device, dtype=ref.dtype, requires_grad=requires_grad) for m in self.mlp_hidden]
        return heads, neurons

    # --- physical pruning ----------------------------------------------------------------
    def prune(self, keep_heads: Sequence[Sequence[int]], keep_neurons: Sequence[Sequence[int]]) -> VisionTransformer:
        """A new, smaller model keeping only the listed heads / neurons of each block.

        Removing a head deletes its Q, K and V rows of ``qkv`` and its columns of ``proj``;
        removing a neuron deletes its ``fc1`` row and ``fc2`` column. The result equals this
        model run with the complementary zero masks.
        """
        depth = len(self.blocks)
        for name, keep, sizes in (("keep_heads", keep_heads, self.n_heads), ("keep_neurons", keep_neurons, self.mlp_hidden)):
            if len(keep) != depth:
                fail(name, f"list the kept units of each of the {depth} blocks", len(keep))
            for b, (idx, size) in enumerate(zip(keep, sizes)):
                if len(set(idx)) != len(idx) or any(not 0 <= int(i) < size for i in idx):
                    fail(f"{name}[{b}]", f"hold distinct indices in [0, {size})", list(idx))
        ref = self.head.weight
        new = VisionTransformer(
            **(self.config | {"n_heads": [len(k) for k in keep_heads], "mlp_hidden": [len(k) for k in keep_neurons]}),
            device=ref.device, dtype=ref.dtype,
        )
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("blocks.")}
        hd = self.config["head_dim"]
        for b, (old, kh, kn) in enumerate(zip(self.blocks, keep_heads, keep_neurons)):
            heads = torch.as_tensor(sorted(int(i) for i in kh), dtype=torch.long)
            cols = (heads[:, None] * hd + torch.arange(hd)).reshape(-1)  # (kept·hd,) columns of proj
            rows = torch.cat([part * old.attn.n_heads * hd + cols for part in range(3)])  # q, k, v rows
            neurons = torch.as_tensor(sorted(int(i) for i in kn), dtype=torch.long)
            p = f"blocks.{b}."
            for key, value in old.state_dict().items():
                state[p + key] = value
            state[p + "attn.qkv.weight"] = old.attn.qkv.weight[rows]
            state[p + "attn.qkv.bias"] = old.attn.qkv.bias[rows]
            state[p + "attn.proj.weight"] = old.attn.proj.weight[:, cols]
            state[p + "mlp.fc1.weight"] = old.mlp.fc1.weight[neurons]
            state[p + "mlp.fc1.bias"] = old.mlp.fc1.bias[neurons]
            state[p + "mlp.fc2.weight"] = old.mlp.fc2.weight[:, neurons]
        new.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        return new.train(self.training)

    def with_head(self, n_classes: int) -> VisionTransformer:
        """A copy with a fresh ``n_classes`` head (same backbone weights)."""
        ref = self.head.weight
        new = VisionTransformer(**(self.config | {"n_classes": n_classes}), device=ref.device, dtype=ref.dtype)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("head.")}
        new.load_state_dict(state, strict=False)
        return new


def _vit(defaults: dict[str, Any], overrides: dict[str, Any]) -> VisionTransformer:
    return VisionTransformer(**(defaults | overrides))


@register_model(family="vit", kind="vision", input_size=(1, 28, 28))
def vit_tiny_28(**overrides: Any) -> VisionTransformer:
    """ViT-tiny for 28×28 grey images (Fashion-MNIST/MNIST): D=64, 4 blocks × 4 heads, MLP 128 (~0.14 M params)."""
    return _vit({"img_size": 28, "patch_size": 4, "in_chans": 1, "n_classes": 10, "dim": 64, "depth": 4, "n_heads": 4, "mlp_hidden": 128}, overrides)


@register_model(family="vit", kind="vision", input_size=(1, 28, 28))
def vit_small_28(**overrides: Any) -> VisionTransformer:
    """ViT-small for 28×28 grey images: D=128, 6 blocks × 4 heads, MLP 256 (~0.8 M params)."""
    return _vit({"img_size": 28, "patch_size": 4, "in_chans": 1, "n_classes": 10, "dim": 128, "depth": 6, "n_heads": 4, "mlp_hidden": 256}, overrides)


@register_model(family="vit", kind="vision", input_size=(3, 224, 224))
def vit_tiny_224(**overrides: Any) -> VisionTransformer:
    """ViT-tiny for 224×224 RGB images (DeiT-Ti shape): patch 16, D=192, 12 blocks × 3 heads, MLP 768 (~5.7 M params)."""
    return _vit({"img_size": 224, "patch_size": 16, "in_chans": 3, "n_classes": 1000, "dim": 192, "depth": 12, "n_heads": 3, "mlp_hidden": 768}, overrides)


@register_model(family="vit", kind="vision", input_size=(3, 224, 224))
def vit_small_224(**overrides: Any) -> VisionTransformer:
    """ViT-small for 224×224 RGB images (DeiT-S shape): patch 16, D=384, 12 blocks × 6 heads, MLP 1536 (~22 M params)."""
    return _vit({"img_size": 224, "patch_size": 16, "in_chans": 3, "n_classes": 1000, "dim": 384, "depth": 12, "n_heads": 6, "mlp_hidden": 1536}, overrides)


def attention_reference(x: torch.Tensor, attn: Attention, head_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Slow reference of :class:`Attention` (explicit softmax), for tests of the fast path."""
    b, n, _ = x.shape
    q, k, v = attn.qkv(x).reshape(b, n, 3, attn.n_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(attn.head_dim), dim=-1)  # (B, H, N, N)
    out = weights @ v
    if head_mask is not None:
        out = out * head_mask.view(1, -1, 1, 1)
    return attn.proj(out.transpose(1, 2).reshape(b, n, -1))
