"""The attention projections of a decode step: bf16 GEMVs against the compact 12-bit ones.

Random gpt-oss weights (qkv 5120 x 2880 with the RMSNorm fused, out 2880 x 4096 with the residual
add fused, N(0, 1/fan_in) like the random checkpoints), L layers' pairs in turn inside a CUDA
graph with programmatic dependent launch, as a decode step runs them. Prints JSON lines: bytes,
exceptions, µs per layer for each way, and the largest difference between the two outputs.

    python benchmarks/compact_gemv.py [--layers 24] [--parts] [--unembedding] [--sweep]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from graph_timing import graph_time

from gptoss_chat.kernels.common import pdl_enabled
from gptoss_chat.kernels.compact_bf16 import DECODE_BLOCKS, compact, compact_gemv
from gptoss_chat.kernels.gemv import linear_residual, norm_linear, unembedding
from gptoss_chat.kernels.rms_norm import rms_norm


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--parts", action="store_true", help="each projection alone too")
    parser.add_argument("--unembedding", action="store_true", help="the 201088 x 2880 one too")
    parser.add_argument(
        "--separate-norm",
        action="store_true",
        help="also the qkv projection after the norm kernel (no fused norm)",
    )
    args = parser.parse_args()
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    hidden, qkv_rows, q_dim = 2880, 5120, 4096

    def normal(*shape, std):
        return (torch.randn(shape, generator=g, device=dev) * std).to(torch.bfloat16)

    layers = []
    for _ in range(args.layers):
        qkv = normal(qkv_rows, hidden, std=hidden**-0.5)
        out = normal(hidden, q_dim, std=q_dim**-0.5)
        layers.append(dict(
            qkv=qkv, qkv_c=compact(qkv), qkv_b=normal(qkv_rows, std=0.1),
            out=out, out_c=compact(out), out_b=normal(hidden, std=0.1),
            norm=torch.rand(hidden, generator=g, device=dev) + 0.5,
        ))  # fmt: skip
    first = layers[0]
    emit(qkv_bytes=first["qkv"].numel() * 2, qkv_compact=first["qkv_c"].nbytes(),
         qkv_exceptions=int((first["qkv_c"].exc_index >= 0).sum()),
         qkv_cap=first["qkv_c"].exc_index.shape[1], out_compact=first["out_c"].nbytes(),
         out_exceptions=int((first["out_c"].exc_index >= 0).sum()),
         out_cap=first["out_c"].exc_index.shape[1], base=first["qkv_c"].base)  # fmt: skip
    x0 = torch.randn(1, hidden, generator=g, device=dev).to(torch.bfloat16)
    pdl = pdl_enabled(x0)

    def dense_step():
        x = x0
        for layer in layers:
            q = norm_linear(x, layer["norm"], 1e-5, layer["qkv"], layer["qkv_b"])
            x = linear_residual(q[:, :q_dim], layer["out"], layer["out_b"], x)
        return x

    def compact_step(blocks=None, pre=None, separate_norm=False):
        x = x0
        for layer in layers:
            norm = (layer["norm"], 1e-5)
            if separate_norm:  # the norm kernel first, then the GEMV of its normed row
                normed = rms_norm(x, layer["norm"], 1e-5)
                q = compact_gemv(normed, layer["qkv_c"], layer["qkv_b"], pdl=pdl, blocks=blocks,
                                 pre=pre)  # fmt: skip
            else:
                q = compact_gemv(x, layer["qkv_c"], layer["qkv_b"], norm=norm, pdl=pdl,
                                 blocks=blocks, pre=pre)  # fmt: skip
            x = compact_gemv(q[:, :q_dim], layer["out_c"], layer["out_b"], residual=x, pdl=pdl,
                             blocks=blocks)  # fmt: skip
        return x

    # the same products in another order: compare one layer's outputs, float32
    layer = first
    q_dense = norm_linear(x0, layer["norm"], 1e-5, layer["qkv"], layer["qkv_b"])
    q_compact = compact_gemv(x0, layer["qkv_c"], layer["qkv_b"], norm=(layer["norm"], 1e-5))
    same = q_dense.view(torch.int16) == q_compact.view(torch.int16)
    emit(
        check="qkv",
        max_abs_diff=float((q_dense.float() - q_compact.float()).abs().max()),
        max_abs=float(q_dense.float().abs().max()),
        bits_equal=float(same.float().mean()),
    )
    emit(
        check="step",
        max_abs_diff=float((dense_step().float() - compact_step().float()).abs().max()),
    )
    for rep in range(2):
        emit(way="bf16", rep=rep, us_per_layer=round(graph_time(dense_step) / args.layers, 2))
        emit(
            way="compact",
            blocks=DECODE_BLOCKS,
            rep=rep,
            us_per_layer=round(graph_time(compact_step) / args.layers, 2),
        )
        if args.separate_norm:
            for pre in (1, 2, 3):
                us = graph_time(functools.partial(compact_step, None, pre, True)) / args.layers
                emit(way="compact, norm kernel first", qkv_pre=pre, rep=rep,
                     us_per_layer=round(us, 2))  # fmt: skip
    if args.parts:  # each projection alone, L in turn
        attn = torch.randn(1, q_dim, generator=g, device=dev).to(torch.bfloat16)

        def qkv_only(use_compact: bool) -> None:
            for layer in layers:
                if use_compact:
                    norm = (layer["norm"], 1e-5)
                    compact_gemv(x0, layer["qkv_c"], layer["qkv_b"], norm=norm, pdl=pdl)
                else:
                    norm_linear(x0, layer["norm"], 1e-5, layer["qkv"], layer["qkv_b"])

        def out_only(use_compact: bool) -> None:
            for layer in layers:
                if use_compact:
                    compact_gemv(attn, layer["out_c"], layer["out_b"], residual=x0, pdl=pdl)
                else:
                    linear_residual(attn, layer["out"], layer["out_b"], x0)

        for name, part in (("qkv", qkv_only), ("out", out_only)):
            for use in (False, True):
                us = graph_time(functools.partial(part, use)) / args.layers
                emit(part=name, way="compact" if use else "bf16", us=round(us, 2))
    if args.unembedding:  # sampled decoding's logits (greedy goes through the screen)
        table = normal(201088, hidden, std=hidden**-0.5)
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        table_c = compact(table)
        transient = torch.cuda.max_memory_allocated() - before - table_c.nbytes()
        exceptions = int((table_c.exc_index >= 0).sum())
        cap = table_c.exc_index.shape[1]
        emit(unembedding_bytes=table.numel() * 2, compact=table_c.nbytes(), exceptions=exceptions,
             cap=cap, compacting_transient_bytes=transient)  # fmt: skip
        x = torch.randn(1, hidden, generator=g, device=dev).to(torch.bfloat16)
        dense_logits = unembedding(x, table)
        diff = (compact_gemv(x, table_c, None, out_dtype=torch.float32) - dense_logits).abs()
        largest = float(dense_logits.abs().max())
        emit(check="unembedding", max_abs_diff=float(diff.max()), max_abs=largest)
        emit(part="unembedding", way="bf16", us=round(graph_time(lambda: unembedding(x, table)), 1))
        configs = [DECODE_BLOCKS, (8, 256, 2, 3), (8, 256, 4, 3), (4, 512, 4, 3), (8, 128, 4, 3),
                   (16, 128, 4, 3), (8, 512, 4, 2), (4, 256, 2, 4)]  # fmt: skip
        for blocks in configs:
            run = functools.partial(compact_gemv, x, table_c, None, out_dtype=torch.float32,
                                    blocks=blocks)  # fmt: skip
            emit(part="unembedding", way="compact", blocks=blocks, us=round(graph_time(run), 1))
        del table, table_c
    if args.sweep:
        # (rows, words, warps, stages), and the qkv projection's steps before its PDL wait
        for blocks, pre in [
            ((4, 256, 2, 3), 1),
            ((4, 256, 2, 3), 2),
            ((4, 256, 2, 3), 3),
            ((4, 256, 2, 2), 2),
            ((4, 256, 2, 4), 2),
            ((8, 256, 2, 2), 1),
            ((8, 256, 2, 2), 2),
            ((8, 256, 4, 2), 2),
            ((4, 512, 4, 3), 1),
            ((8, 128, 4, 3), 2),
            ((8, 128, 4, 3), 4),
            ((2, 256, 2, 3), 2),
        ]:
            try:
                us = graph_time(functools.partial(compact_step, blocks, pre)) / args.layers
                emit(way="compact", blocks=blocks, qkv_pre=pre, us_per_layer=round(us, 2))
            except Exception as exc:  # a config that does not compile or fit: report it
                emit(way="compact", blocks=blocks, qkv_pre=pre, error=str(exc)[:200])


if __name__ == "__main__":
    main()
