from __future__ import annotations

import pytest
import torch

from gptoss_chat.kernels.gemv import gemv, gemv_ref, unembedding, unembedding_ref
from gptoss_chat.kernels.rms_norm import rms_norm, rms_norm_ref
from tests.kernels.helpers import rel_err


@pytest.mark.parametrize(("n", "k", "bias"), [(40, 64, True), (33, 96, False)])
def test_gemv_matches_reference(device, n, k, bias) -> None:
    x = torch.randn(2, k, device=device).to(torch.bfloat16)
    w = torch.randn(n, k, device=device).to(torch.bfloat16)
    b = torch.randn(n, device=device).to(torch.bfloat16) if bias else None
    assert rel_err(gemv(x, w, b), gemv_ref(x, w, b)) < 1e-2


def test_unembedding_is_float32(device) -> None:
    x = torch.randn(1, 64, device=device).to(torch.bfloat16)
    w = torch.randn(50, 64, device=device).to(torch.bfloat16)
    out = unembedding(x, w)
    assert out.dtype == torch.float32
    assert rel_err(out, unembedding_ref(x, w)) < 1e-5


def test_gemv_rejects_mismatch(device) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        gemv(torch.zeros(1, 8, device=device), torch.zeros(4, 9, device=device))


def test_rms_norm_matches_reference(device) -> None:
    x = (torch.randn(3, 96, device=device) * 5).to(torch.bfloat16)
    scale = torch.rand(96, device=device) + 0.5
    assert rel_err(rms_norm(x, scale, 1e-5), rms_norm_ref(x, scale, 1e-5)) < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize(("n", "k"), [(5120, 2880), (2880, 4096), (201088, 2880)])
def test_gemv_full_shape(n, k) -> None:
    x = torch.randn(1, k, device="cuda").to(torch.bfloat16)
    w = torch.randn(n, k, device="cuda").to(torch.bfloat16)
    assert (
        rel_err(gemv(x, w, out_dtype=torch.float32), gemv_ref(x, w, out_dtype=torch.float32)) < 1e-4
    )


@pytest.mark.gpu
def test_rms_norm_full_shape() -> None:
    x = torch.randn(7, 2880, device="cuda").to(torch.bfloat16)
    scale = torch.rand(2880, device="cuda")
    assert rel_err(rms_norm(x, scale, 1e-5), rms_norm_ref(x, scale, 1e-5)) < 1e-2
