"""MXFP4 decoding, bit for bit against transformers' dequantisation."""

from __future__ import annotations

import pytest
import torch

from gptoss_chat.model.mxfp4 import FP4_VALUES, dequantize_mxfp4


def random_mxfp4(
    experts: int, rows: int, cols: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    blocks = torch.randint(
        0, 256, (experts, rows, cols // 32, 16), dtype=torch.uint8, generator=gen
    )
    # Every finite e8m0 scale (0..254; 255 is NaN in the format) appears.
    scales = torch.arange(experts * rows * (cols // 32)) % 255
    scales = scales[torch.randperm(scales.numel(), generator=gen)]
    return blocks, scales.to(torch.uint8).reshape(experts, rows, cols // 32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_decode_is_bit_exact_against_transformers(dtype: torch.dtype) -> None:
    mxfp4 = pytest.importorskip("transformers.integrations.mxfp4")
    blocks, scales = random_mxfp4(experts=3, rows=48, cols=128, seed=7)
    theirs = mxfp4.convert_moe_packed_tensors(blocks, scales, dtype=dtype)  # [E, cols, rows]
    ours = dequantize_mxfp4(blocks, scales, dtype)  # [E, rows, cols]
    assert ours.dtype == theirs.dtype == dtype
    bits = torch.int16 if dtype == torch.bfloat16 else torch.int32
    assert torch.equal(ours.transpose(1, 2).contiguous().view(bits), theirs.view(bits))


def test_nibble_order_and_scale() -> None:
    """Low nibble first; scale byte 127 + e multiplies by 2**e."""
    blocks = torch.zeros(1, 16, dtype=torch.uint8)
    blocks[0, 0] = 0x72  # low nibble 2 (+1.0), high nibble 7 (+6.0)
    blocks[0, 1] = 0x9F  # low nibble 15 (-6.0), high nibble 9 (-0.5)
    scales = torch.tensor([127 + 3], dtype=torch.uint8)
    values = dequantize_mxfp4(blocks, scales, torch.float32)  # [G * 32]
    assert values[:4].tolist() == [8.0, 48.0, -48.0, -4.0]
    assert values[4:].abs().sum() == 0
    assert len(FP4_VALUES) == 16


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        dequantize_mxfp4(
            torch.zeros(2, 3, 16, dtype=torch.uint8), torch.zeros(2, 4, dtype=torch.uint8)
        )
    with pytest.raises(TypeError, match="uint8"):
        dequantize_mxfp4(torch.zeros(2, 16), torch.zeros(2, dtype=torch.uint8))
