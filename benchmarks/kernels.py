"""Kernel microbenchmarks at gpt-oss-20b decode shapes (one GPU): achieved bandwidth per kernel.

    python benchmarks/kernels.py [--json]

Prints one JSON line per measurement: kernel, variant, microseconds (median of do_bench),
bytes that must be read, and TB/s. Inputs are random (never zeros) and rotate among several
copies where they would otherwise sit in the 50 MB L2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
import triton


def _bench(fn, rep_ms: int = 200) -> float:
    return triton.testing.do_bench(fn, warmup=50, rep=rep_ms, return_mode="median") * 1e3  # us


def _emit(kernel: str, variant: str, us: float, nbytes: int) -> None:
    row = {"kernel": kernel, "variant": variant, "us": round(us, 2), "bytes": nbytes,
           "TBps": round(nbytes / us / 1e6, 3)}  # fmt: skip
    print(json.dumps(row), flush=True)


def bench_moe(copies: int = 4) -> None:
    from gptoss_chat.kernels.moe_decode import moe_experts
    from tests.kernels.helpers import random_experts

    dev = torch.device("cuda")
    layers = [random_experts(32, 2880, 2880, dev, seed=i) for i in range(copies)]
    x = torch.randn(1, 2880, device=dev).to(torch.bfloat16)
    ids = torch.tensor([[3, 9, 17, 30]], device=dev)
    gates = torch.full((1, 4), 0.25, device=dev)
    values = 5760 * 2880 + 2880 * 2880  # mlp1 [2I, H] + mlp2 [H, I]
    per_expert = values // 2 + values // 32  # fp4 codes + e8m0 scales
    nbytes = 4 * per_expert
    for use_asm in (True, False):
        state = {"i": 0}

        def run(use_asm=use_asm, state=state):
            w = layers[state["i"] % copies]
            state["i"] += 1
            moe_experts(
                x,
                ids,
                gates,
                w.mlp1_blocks,
                w.mlp1_scales,
                w.mlp1_bias,
                w.mlp2_blocks,
                w.mlp2_scales,
                w.mlp2_bias,
                7.0,
                use_asm=use_asm,
            )

        _emit("moe_decode", "prmt_dp4a" if use_asm else "arith", _bench(run), nbytes)


def bench_gemv(copies: int = 3) -> None:
    from gptoss_chat.kernels.gemv import gemv

    dev = torch.device("cuda")
    for n, k, label in [(5120, 2880, "qkv"), (2880, 4096, "out"), (201088, 2880, "unembed")]:
        count = copies if n < 100_000 else 1  # the unembedding (1.16 GB) already dwarfs L2
        ws = [torch.randn(n, k, device=dev).to(torch.bfloat16) for _ in range(count)]
        x = torch.randn(1, k, device=dev).to(torch.bfloat16)
        nbytes = n * k * 2
        state = {"i": 0}

        def triton_run(ws=ws, x=x, state=state):
            state["i"] += 1
            gemv(x, ws[state["i"] % len(ws)], out_dtype=torch.float32)

        def cublas_run(ws=ws, x=x, state=state):
            state["i"] += 1
            F.linear(x, ws[state["i"] % len(ws)])

        _emit(f"gemv_{label}", "triton", _bench(triton_run), nbytes)
        _emit(f"gemv_{label}", "cublas", _bench(cublas_run), nbytes)


def _rotating(body, copies: int):
    """A no-argument launch that calls body(i) with i cycling over the weight copies, so each
    timed launch reads weights no earlier launch left in L2."""
    state = {"i": 0}

    def run():
        state["i"] += 1
        body(state["i"] % copies)

    return run


def _graph_us(fn) -> float:
    """Median microseconds per call, replayed from a CUDA graph as in the decode step (eager
    timing of a few-microsecond kernel measures Python's launch overhead instead)."""
    return triton.testing.do_bench_cudagraph(fn, rep=200, return_mode="median") * 1e3


def bench_fused(copies: int = 3) -> None:
    """The fused decode kernels against the launch sequences they replace: norm + qkv GEMV,
    out GEMV + residual add, norm + router logits, out GEMV + residual + norm + router logits
    (`_bench_out_router`); weights rotate among copies (L2 is 50 MB)."""
    from gptoss_chat.kernels.gemv import gemv, linear_residual, norm_linear
    from gptoss_chat.kernels.rms_norm import rms_norm
    from gptoss_chat.kernels.router import norm_router_logits, router_logits

    dev = torch.device("cuda")
    eps = 1e-5
    x = torch.randn(1, 2880, device=dev).to(torch.bfloat16)
    scale = torch.rand(2880, device=dev) + 0.5

    def weights(n: int, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.randn(n, k, device=dev).to(torch.bfloat16) * 0.02,
                 torch.randn(n, device=dev).to(torch.bfloat16)) for _ in range(copies)]  # fmt: skip

    qkv = weights(5120, 2880)
    variants = {
        "fused": lambda i: norm_linear(x, scale, eps, *qkv[i]),
        "unfused": lambda i: gemv(rms_norm(x, scale, eps), *qkv[i]),
        "cublas": lambda i: F.linear(rms_norm(x, scale, eps), *qkv[i]),
    }
    for variant, body in variants.items():
        _emit("norm_qkv_5120x2880", variant, _graph_us(_rotating(body, copies)), 5120 * 2880 * 2)
    out = weights(2880, 4096)
    attn = torch.randn(1, 4096, device=dev).to(torch.bfloat16)
    variants = {
        "fused": lambda i: linear_residual(attn, *out[i], x),
        "unfused": lambda i: x + gemv(attn, *out[i]),
        "cublas": lambda i: x + F.linear(attn, *out[i]),
    }
    for variant, body in variants.items():
        _emit(
            "out_residual_2880x4096", variant, _graph_us(_rotating(body, copies)), 2880 * 4096 * 2
        )
    gate = weights(32, 2880)
    variants = {
        "fused": lambda i: norm_router_logits(x, scale, eps, *gate[i]),
        "unfused": lambda i: router_logits(rms_norm(x, scale, eps), *gate[i]),
    }
    # other launch shapes (experts per program, BLOCK_H, warps): one pass over the row or more
    # programs; 4096 covers the padded row, so each program issues all its loads at once
    for rows, block_h, warps in [(1, 4096, 4), (2, 4096, 8), (1, 1024, 4), (4, 1024, 4),
                                 (2, 1024, 4)]:  # fmt: skip
        blocks = (rows, block_h, warps)
        variants[f"fused_{rows}_{block_h}_w{warps}"] = lambda i, blocks=blocks: norm_router_logits(
            x, scale, eps, *gate[i], blocks=blocks
        )
    for variant, body in variants.items():
        _emit("norm_router_32x2880", variant, _graph_us(_rotating(body, copies)), 32 * 2880 * 2)
    for n_experts in (32, 128):
        _bench_out_router(n_experts, copies)
    from gptoss_chat.kernels import gemv as gemv_module

    # the blocks each GEMV form ran with (a whole list with GPTOSS_TRITON_AUTOTUNE=1)
    for key, config in getattr(gemv_module._gemv_tuned, "cache", {}).items():
        row = {"kernel": "gemv", "tuning": str(config), "key": str(key)[:160]}
        print(json.dumps(row), flush=True)


def _bench_out_router(n_experts: int, copies: int) -> None:
    """Out projection + residual with the router in its epilogue (one launch) against
    `linear_residual` then `norm_router_logits` (two), and the whole MoE half behind each
    (`out_proj_moe_block` against `linear_residual` + `moe_block`, 20b only). First a check line:
    the fused results replayed from a CUDA graph equal the two launches' bit for bit, and the
    arrival counters are back at zero."""
    from gptoss_chat.kernels.gemv import arrival_counters, linear_residual, linear_residual_route
    from gptoss_chat.kernels.moe import moe_block, out_proj_moe_block
    from gptoss_chat.kernels.router import norm_router_logits
    from tests.kernels.helpers import random_experts

    dev, eps, hidden = torch.device("cuda"), 1e-5, 2880
    x = torch.randn(1, hidden, device=dev).to(torch.bfloat16) * 3
    attn = torch.randn(1, 4096, device=dev).to(torch.bfloat16)
    scale = torch.rand(hidden, device=dev) + 0.5
    out = [(torch.randn(hidden, 4096, device=dev).to(torch.bfloat16) * 0.02,
            torch.randn(hidden, device=dev).to(torch.bfloat16)) for _ in range(copies)]  # fmt: skip
    inter = 2880 if n_experts == 32 else 64  # 120b: the router alone (its experts are 60 GB)
    experts = [random_experts(n_experts, hidden, inter, dev, seed=i) for i in range(copies)]

    def two_launches(i: int):
        mid = linear_residual(attn, *out[i], x)
        fixed = (torch.empty(1, 2 * hidden, dtype=torch.int8, device=dev),
                 torch.empty(1, hidden // 32, dtype=torch.float32, device=dev))  # fmt: skip
        normed, logits = norm_router_logits(mid, scale, eps, experts[i].gate_weight,
                                            experts[i].gate_bias, quantized=fixed)  # fmt: skip
        return mid, normed, logits, *fixed

    def fused(i: int):
        mid, normed, logits, fixed = linear_residual_route(
            attn, *out[i], x, scale, eps, experts[i].gate_weight, experts[i].gate_bias
        )
        return mid, normed, logits, *fixed

    kernel = f"out_router_2880x4096_E{n_experts}"
    for i in range(copies):  # compiles, and makes each copy's counters before any capture
        fused(i)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = fused(0)
    reference = two_launches(0)
    same = True
    for _ in range(5):
        graph.replay()
        torch.cuda.synchronize()
        same &= all(torch.equal(a, b) for a, b in zip(captured, reference, strict=True))
    zeroed = arrival_counters(dev, out[0][0].data_ptr()).tolist() == [0, 0]
    print(json.dumps({"kernel": kernel, "check": "graph_bit_equal", "ok": bool(same),
                      "counters_zero": zeroed}), flush=True)  # fmt: skip

    nbytes = (hidden * 4096 + n_experts * hidden) * 2
    for variant, body in {"fused": fused, "unfused": two_launches}.items():
        _emit(kernel, variant, _graph_us(_rotating(body, copies)), nbytes)
    if n_experts != 32:
        return

    def block_unfused(i: int):
        return moe_block(linear_residual(attn, *out[i], x), scale, eps, experts[i], 4, 7.0)

    variants = {
        "fused": lambda i: out_proj_moe_block(attn, *out[i], x, scale, eps, experts[i], 4, 7.0),
        "unfused": block_unfused,
    }
    nbytes += 4 * 3 * hidden * 2880 // 2  # four experts' fp4 codes
    os.environ["GPTOSS_ROUTER_EPILOGUE"] = "1"  # opt-in in the engine (kernels/moe.py)
    try:
        for variant, body in variants.items():
            _emit("out_proj_moe_block_20b", variant, _graph_us(_rotating(body, copies)), nbytes)
    finally:
        del os.environ["GPTOSS_ROUTER_EPILOGUE"]


def bench_attention() -> None:
    from gptoss_chat.kernels.attention_decode import attention_decode
    from gptoss_chat.kernels.attention_prefill import attention_prefill

    dev = torch.device("cuda")
    slots = 131072
    k = torch.randn(slots, 8, 64, device=dev).to(torch.bfloat16)
    v = torch.randn(slots, 8, 64, device=dev).to(torch.bfloat16)
    q = torch.randn(1, 64, 64, device=dev).to(torch.bfloat16)
    sinks = torch.randn(64, device=dev)
    for ctx in (1024, 32768):
        start = torch.tensor(ctx - 1, device=dev)
        us = _bench(lambda start=start: attention_decode(q, k, v, sinks, start, 0, 0.125))
        _emit("attention_decode", f"ctx{ctx}", us, ctx * 8 * 64 * 2 * 2)
    ring = torch.randn(8320, 8, 64, device=dev).to(torch.bfloat16)
    start = torch.tensor(5000, device=dev)
    us = _bench(lambda: attention_decode(q, ring, ring, sinks, start, 128, 0.125))
    _emit("attention_decode", "window128", us, 128 * 8 * 64 * 2 * 2)
    for n_tok in (2048, 8192):
        qp = torch.randn(n_tok, 64, 64, device=dev).to(torch.bfloat16)
        start = torch.tensor(0, device=dev)
        us = _bench(lambda qp=qp, start=start: attention_prefill(qp, k, v, sinks, start, 0, 0.125))
        flops = 4 * n_tok * n_tok / 2 * 64 * 64
        print(json.dumps({"kernel": "attention_prefill", "variant": f"T{n_tok}", "us": round(us, 1),
                          "TFLOPs": round(flops / us / 1e6, 1)}), flush=True)  # fmt: skip


def bench_rope_attention() -> None:
    """A decode token's attention in a CUDA graph: rope_cache + attention_decode (three launches)
    against rope_attention_decode (one), alone and between the qkv projection and the out
    projection as in a layer (where PDL lets the launches overlap their neighbours)."""
    from gptoss_chat.kernels.attention_decode import attention_decode
    from gptoss_chat.kernels.gemv import linear_residual, norm_linear
    from gptoss_chat.kernels.rope_attention_decode import rope_attention_decode
    from gptoss_chat.kernels.rope_cache import rope_cache

    dev = torch.device("cuda")
    k, v = (torch.randn(131072, 8, 64, device=dev).to(torch.bfloat16) for _ in range(2))
    ring_k, ring_v = (torch.randn(8320, 8, 64, device=dev).to(torch.bfloat16) for _ in range(2))
    sinks = torch.randn(64, device=dev)
    x = torch.randn(1, 2880, device=dev).to(torch.bfloat16)
    scale = torch.rand(2880, device=dev) + 0.5
    w_qkv = torch.randn(5120, 2880, device=dev).to(torch.bfloat16) * 0.02
    b_qkv = torch.randn(5120, device=dev).to(torch.bfloat16)
    w_out = torch.randn(2880, 4096, device=dev).to(torch.bfloat16) * 0.02
    b_out = torch.randn(2880, device=dev).to(torch.bfloat16)
    qkv = norm_linear(x, scale, 1e-5, w_qkv, b_qkv)
    angles = torch.rand(131072, 32, device=dev) * 6.28  # the rotary tables, row = position
    cos, sin = angles.cos().to(torch.bfloat16), angles.sin().to(torch.bfloat16)

    def three(qkv, kc, vc, pos, window, at):  # rope_cache takes the position's row
        q = rope_cache(qkv, cos[at : at + 1], sin[at : at + 1], kc, vc, pos, 64)
        return attention_decode(q, kc, vc, sinks, pos, window, 0.125)

    def one(qkv, kc, vc, pos, window, at):
        return rope_attention_decode(qkv, cos, sin, kc, vc, sinks, pos, window, 0.125, 64)

    cases = [("ctx1024", k, v, 1023, 0), ("ctx32768", k, v, 32767, 0),
             ("window128", ring_k, ring_v, 5000, 128)]  # fmt: skip
    for label, kc, vc, at, window in cases:
        pos = torch.tensor(at, device=dev)
        nbytes = min(at, window or at) * 8 * 64 * 2 * 2
        for variant, attend in (("3_launches", three), ("fused", one)):
            us = _graph_us(lambda attend=attend, kc=kc, vc=vc, pos=pos, w=window, at=at:
                           attend(qkv, kc, vc, pos, w, at))  # fmt: skip
            _emit("rope_attention_decode", f"{label}_{variant}", us, nbytes)

            def layer(attend=attend, kc=kc, vc=vc, pos=pos, w=window, at=at):
                h = norm_linear(x, scale, 1e-5, w_qkv, b_qkv)
                return linear_residual(attend(h, kc, vc, pos, w, at), w_out, b_out, x)

            us = _graph_us(layer)
            nbytes_layer = nbytes + (5120 * 2880 + 2880 * 4096) * 2
            _emit("qkv_attention_out", f"{label}_{variant}", us, nbytes_layer)


def bench_prefill_moe() -> None:
    from gptoss_chat.kernels.moe_prefill import moe_grouped
    from gptoss_chat.model.ops import route
    from tests.kernels.helpers import random_experts

    dev = torch.device("cuda")
    w = random_experts(32, 2880, 2880, dev)
    for n_tok in (51, 2048, 8192):
        x = torch.randn(n_tok, 2880, device=dev).to(torch.bfloat16)
        ids, gates = route(x, w, 4)
        us = _bench(lambda x=x, ids=ids, gates=gates: moe_grouped(
            x, ids, gates, w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias, w.mlp2_blocks,
            w.mlp2_scales, w.mlp2_bias, 7.0))  # fmt: skip
        flops = n_tok * 4 * 2 * (5760 * 2880 + 2880 * 2880)
        row = {"kernel": "moe_prefill_grouped", "variant": f"T{n_tok}", "us": round(us, 1),
               "TFLOPs": round(flops / us / 1e6, 1)}  # fmt: skip
        print(json.dumps(row), flush=True)


def bench_misc() -> None:
    from gptoss_chat.kernels.dequant import dequantize
    from gptoss_chat.kernels.rms_norm import rms_norm
    from tests.kernels.helpers import random_experts

    dev = torch.device("cuda")
    x = torch.randn(1, 2880, device=dev).to(torch.bfloat16)
    scale = torch.rand(2880, device=dev)
    _emit("rms_norm", "T1", _bench(lambda: rms_norm(x, scale, 1e-5)), 2880 * 4)
    from gptoss_chat.kernels.rope_cache import rope_cache
    from gptoss_chat.kernels.router import route

    qkv = torch.randn(1, 5120, device=dev).to(torch.bfloat16)
    cs = torch.randn(1, 32, device=dev).to(torch.bfloat16)
    cache = torch.randn(8320, 8, 64, device=dev).to(torch.bfloat16)
    pos = torch.tensor(77, device=dev)
    _emit("rope_cache", "T1", _bench(lambda: rope_cache(qkv, cs, cs, cache, cache, pos, 64)), 10240)
    ex = random_experts(32, 2880, 64, dev)
    _emit("router", "T1", _bench(lambda: route(x, ex.gate_weight, ex.gate_bias, 4)), 32 * 2880 * 2)
    w = random_experts(1, 2880, 2880, dev)
    us = _bench(lambda: dequantize(w.mlp1_blocks[0], w.mlp1_scales[0]))
    _emit("dequant_expert", "mlp1", us, 5760 * 2880 // 2 + 5760 * 2880 * 2)
    src = torch.randn(1 << 28, device=dev)  # 1 GiB: the copy ceiling (bytes read + written)
    dst = torch.empty_like(src)
    _emit("copy", "1GiB", _bench(lambda: dst.copy_(src)), 2 * src.numel() * 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only", help="comma list: moe,gemv,fused,attention,prefill_moe,misc,rope_attention"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/kernels.py needs a CUDA GPU", file=sys.stderr)
        return 2
    every = "moe,gemv,fused,attention,prefill_moe,misc,rope_attention"
    wanted = set((args.only or every).split(","))
    for name, fn in [("moe", bench_moe), ("gemv", bench_gemv), ("fused", bench_fused),
                     ("attention", bench_attention), ("prefill_moe", bench_prefill_moe),
                     ("misc", bench_misc), ("rope_attention", bench_rope_attention)]:  # fmt: skip
        if name in wanted:
            try:
                fn()
            except Exception as exc:  # report it and go on to the next kernel
                print(json.dumps({"kernel": name, "error": repr(exc)[:500]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
