"""Where a decode step's time goes: the step with kernels replaced by stand-ins (H100).

    PYTHONPATH=$PWD python benchmarks/decode_standins.py [--contexts 1024,32768] [--model 120b]

Random weights built on the GPU (no checkpoint) and prepared as the loader does on an 80 GB GPU
(tiled experts, the greedy screen, the compact projections and unembedding), a cache of 131,072
positions as the app allocates, greedy decoding of 129 tokens after a prompt of each context
length, best of 2. Each
variant swaps some kernels for stand-ins that keep the real launch's grid, warps and PDL points
(and, for the expert GEMVs, read exactly the same codes and scales) but do none of its work:

- `attention`: waits for the qkv projection and copies q to the output (no RoPE, no KV read or
  write, no merge);
- `router`: writes the router bias as logits and a constant row in fixed point (no norm, no
  read of the 184 KB gate matrix);
- `combine`: copies the residual (the MoE output is dropped);
- `mlp1`, `mlp2`: stream their experts' codes and scales with plain loads and an XOR (no
  decoding, no products), in the real kernels' steps and layout (tiled experts: 4 KB steps,
  expert_layout.py), writing constant activations.

The difference to the real step is what that kernel's own work costs on the step's critical
path; all stand-ins together leave the launch chain and its weight streams. Prints one JSON line
per variant and context. The numbers are for comparing variants within one run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
import triton
import triton.language as tl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine import prompt_ids, random_weights_on_gpu  # noqa: E402

from gptoss_chat.generator import SamplingOptions  # noqa: E402
from gptoss_chat.kernels import build_ops, moe_decode, rope_attention_decode, router  # noqa: E402
from gptoss_chat.kernels.common import let_next_kernel_start, wait_for_previous_kernel  # noqa: E402
from gptoss_chat.kernels.router import select_expert  # noqa: E402
from gptoss_chat.model.config import GPT_OSS_20B, GPT_OSS_120B  # noqa: E402
from gptoss_chat.model.generator import LocalGenerator, add_decoding_aids  # noqa: E402
from gptoss_chat.model.kv_cache import KVCache  # noqa: E402
from gptoss_chat.model.ops import TORCH_OPS  # noqa: E402
from gptoss_chat.model.transformer import Transformer  # noqa: E402

VARIANTS = {
    "real": (),
    "attention": ("attention",),
    "router": ("router",),
    "combine": ("combine",),
    "experts": ("mlp1", "mlp2"),
    "small": ("attention", "router", "combine"),
    "all": ("attention", "router", "combine", "mlp1", "mlp2"),
}


@triton.jit
def _stream_rows(w_block, s_block, K: tl.constexpr, R: tl.constexpr, BG: tl.constexpr,
                 WAIT_AFTER_FIRST: tl.constexpr, PDL: tl.constexpr,
                 TILED: tl.constexpr):  # fmt: skip
    """Reads a block of R rows of K fp4 codes (int32 words from w_block) and their scales
    (from s_block) in the real kernel's steps of [R, 4 BG] words: a row's next 4 BG words, or
    with tiled experts (expert_layout.py) the block's next R x 4 BG words. An XOR keeps the
    loads."""
    words: tl.constexpr = R * K // 8 if TILED else K // 8
    stride: tl.constexpr = 4 * BG if TILED else K // 8
    STEP: tl.constexpr = R * 4 * BG if TILED else 4 * BG
    r = tl.arange(0, R)
    cols = tl.arange(0, 4 * BG)
    at = r[:, None] * stride + cols[None, :] if TILED else cols[None, :] + 0 * r[:, None]
    w_rows = w_block + (0 if TILED else r[:, None] * stride)
    acc = tl.zeros([R, 4 * BG], dtype=tl.int32)
    following = tl.load(w_rows + at, mask=at < words, other=0)
    if WAIT_AFTER_FIRST:  # as mlp2: the first codes are requested before the PDL wait
        wait_for_previous_kernel(PDL)
    for w0 in range(STEP, words, STEP):
        held = following
        following = tl.load(w_rows + w0 + at, mask=(w0 + at) < words, other=0)
        acc ^= held
    acc ^= following
    groups = tl.arange(0, 128)
    scales = tl.load(
        s_block + r[:, None] * (K // 32) + groups[None, :], mask=groups[None, :] < K // 32, other=0
    )  # the block's bytes either way
    return tl.sum(acc, axis=1) + tl.sum(scales.to(tl.int32), axis=1)


@triton.jit
def _mlp1_standin(ids_ptr, blocks_ptr, scales_ptr, aq_ptr, as_ptr, H: tl.constexpr,
                  INTER: tl.constexpr, K_SEL: tl.constexpr, E: tl.constexpr, E_PAD: tl.constexpr,
                  K_PAD: tl.constexpr, OUT: tl.constexpr, PDL: tl.constexpr,
                  TILED: tl.constexpr):  # fmt: skip
    wait_for_previous_kernel(PDL)
    let_next_kernel_start(PDL)
    pair = tl.program_id(0)
    expert, _ = select_expert(ids_ptr, pair // K_SEL, pair % K_SEL, E, E_PAD, K_SEL, K_PAD)
    expert = expert.to(tl.int64)
    rows = tl.program_id(1) * 2 * OUT + tl.arange(0, 2 * OUT)
    block = tl.program_id(1) * 2 * OUT
    w_block = blocks_ptr + expert * (2 * INTER * H // 8) + block * (H // 8)
    s_block = scales_ptr + expert * (2 * INTER * H // 32) + block * (H // 32)
    seen = _stream_rows(w_block, s_block, H, 2 * OUT, 8, False, PDL, TILED)
    tl.store(aq_ptr + pair * 2 * INTER + rows, (seen == 123456789).to(tl.int8))
    step = tl.full([1], 1e-3, tl.float32)
    tl.store(as_ptr + pair * (INTER // OUT) + tl.program_id(1) + tl.arange(0, 1), step)


@triton.jit
def _mlp2_standin(ids_ptr, blocks_ptr, scales_ptr, part_ptr, H: tl.constexpr,
                  INTER: tl.constexpr, K_SEL: tl.constexpr, E: tl.constexpr, E_PAD: tl.constexpr,
                  K_PAD: tl.constexpr, BLOCK_N: tl.constexpr, PDL: tl.constexpr,
                  TRIGGER: tl.constexpr, TILED: tl.constexpr):  # fmt: skip
    if TRIGGER:  # as mlp2: the combining launch comes up at once
        let_next_kernel_start(PDL)
    pair = tl.program_id(0)
    expert, _ = select_expert(ids_ptr, pair // K_SEL, pair % K_SEL, E, E_PAD, K_SEL, K_PAD)
    expert = expert.to(tl.int64)
    rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    block = tl.program_id(1) * BLOCK_N
    w_block = blocks_ptr + expert * (H * INTER // 8) + block * (INTER // 8)
    s_block = scales_ptr + expert * (H * INTER // 32) + block * (INTER // 32)
    seen = _stream_rows(w_block, s_block, INTER, BLOCK_N, 16, True, PDL, TILED)
    tl.store(part_ptr + pair * H + rows, (seen == 123456789).to(tl.float32))


@triton.jit
def _router_standin(b_ptr, logits_ptr, xq_ptr, xs_ptr, H: tl.constexpr, E: tl.constexpr,
                    SHARE: tl.constexpr, SHARE_PAD: tl.constexpr, GROUPS: tl.constexpr,
                    GROUPS_PAD: tl.constexpr, PDL: tl.constexpr, WAIT: tl.constexpr):  # fmt: skip
    wait_for_previous_kernel(WAIT)
    let_next_kernel_start(PDL)
    token = tl.program_id(0)
    e = tl.program_id(1)
    one = tl.arange(0, 1)
    tl.store(logits_ptr + token * E + e + one, tl.load(b_ptr + e + one).to(tl.float32))
    i = tl.arange(0, SHARE_PAD)
    at = e * SHARE + i
    tl.store(xq_ptr + token * 2 * H + at, (i * 0 + 1).to(tl.int8),
             mask=(i < SHARE) & (at < 2 * H))  # fmt: skip
    g = tl.arange(0, GROUPS_PAD)
    at_g = e * GROUPS + g
    tl.store(xs_ptr + token * (H // 32) + at_g, tl.full([GROUPS_PAD], 1e-3, tl.float32),
             mask=(g < GROUPS) & (at_g < H // 32))  # fmt: skip


@triton.jit
def _attention_standin(qkv_ptr, out_ptr, G: tl.constexpr, D: tl.constexpr, PDL: tl.constexpr,
                       LATE: tl.constexpr):  # fmt: skip
    if not LATE:
        let_next_kernel_start(PDL)
    wait_for_previous_kernel(PDL)
    if LATE:  # as the real one: the out projection comes up after the wait
        let_next_kernel_start(PDL)
    head = tl.program_id(0)
    if tl.program_id(1) == 0:
        i = tl.arange(0, G * D)
        tl.store(out_ptr + head * G * D + i, tl.load(qkv_ptr + head * G * D + i))


@triton.jit
def _combine_standin(out_ptr, residual_ptr, H: tl.constexpr, BLOCK: tl.constexpr,
                     PDL: tl.constexpr, WAIT: tl.constexpr):  # fmt: skip
    let_next_kernel_start(PDL)
    wait_for_previous_kernel(WAIT)  # as the real one: mlp2's dependent
    row = tl.program_id(0) * H
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    kept = tl.load(residual_ptr + row + cols, mask=cols < H)
    tl.store(out_ptr + row + cols, kept, mask=cols < H)


class _Swap:
    """Stands in for a kernel object at its launch sites (`kernel[grid](*args, **kw)`). These
    kernels serve decode (and prompts of a few tokens, whose output no figure here uses); the
    combining launch without a residual belongs to prefill and stays real."""

    def __init__(self, real, name: str) -> None:
        self.real, self.name = real, name

    def __getitem__(self, grid):
        def launch(*args, **kw):
            if self.name == "combine" and kw.get("residual_ptr") is None:
                return self.real[grid](*args, **kw)
            return getattr(self, f"_{self.name}")(grid, args, kw)

        return launch

    def _mlp1(self, grid, args, kw):
        ids, blocks, scales, aq, as_ = args[2], args[3], args[4], args[6], args[7]
        _mlp1_standin[grid](ids, blocks, scales, aq, as_, H=kw["H"], INTER=kw["INTER"],
                            K_SEL=kw["K_SEL"], E=kw["E"], E_PAD=kw["E_PAD"], K_PAD=kw["K_PAD"],
                            OUT=kw["OUT"], PDL=kw["PDL"], launch_pdl=kw["PDL"],
                            TILED=kw.get("TILED", False), num_warps=4)  # fmt: skip

    def _mlp2(self, grid, args, kw):
        ids, blocks, scales, part = args[2], args[4], args[5], args[7]
        block_n = 16
        pairs = grid({"BLOCK_N": block_n})[0]
        _mlp2_standin[(pairs, triton.cdiv(kw["H"], block_n))](
            ids, blocks, scales, part, H=kw["H"], INTER=kw["INTER"], K_SEL=kw["K_SEL"],
            E=kw["E"], E_PAD=kw["E_PAD"], K_PAD=kw["K_PAD"], BLOCK_N=block_n, PDL=kw["PDL"],
            TRIGGER=kw.get("TRIGGER", False), launch_pdl=kw["PDL"], num_warps=4,
            TILED=kw.get("TILED", False),
        )  # fmt: skip

    def _router(self, grid, args, kw):
        hidden, experts, programs = kw["H"], kw["E"], grid[1]
        share, groups = triton.cdiv(2 * hidden, programs), triton.cdiv(hidden // 32, programs)
        _router_standin[grid](args[2], args[3], kw["xq_ptr"], kw["xs_ptr"], H=hidden, E=experts,
                              SHARE=share, SHARE_PAD=triton.next_power_of_2(share), GROUPS=groups,
                              GROUPS_PAD=triton.next_power_of_2(groups), PDL=kw["PDL"],
                              WAIT=kw["WAIT"], launch_pdl=kw["launch_pdl"],
                              num_warps=4)  # fmt: skip

    def _attention(self, grid, args, kw):
        _attention_standin[grid](args[0], args[11], G=kw["G"], D=kw["D"], PDL=kw["PDL"],
                                 LATE=kw.get("LATE_TRIGGER", False), launch_pdl=kw["launch_pdl"],
                                 num_warps=4)  # fmt: skip

    def _combine(self, grid, args, kw):
        launch = {"launch_pdl": True} if kw.get("launch_pdl") else {}
        _combine_standin[grid](args[1], kw["residual_ptr"], H=kw["H"], BLOCK=kw["BLOCK"],
                               PDL=kw["PDL"], WAIT=kw.get("WAIT", False), num_warps=4,
                               **launch)  # fmt: skip


SITES = {
    "mlp1": (moe_decode, "_mlp1_tuned"),
    "mlp2": (moe_decode, "_mlp2_tuned"),
    "combine": (moe_decode, "_combine_kernel"),
    "router": (router, "_router_logits_kernel"),
    "attention": (rope_attention_decode, "_rope_attention_decode_kernel"),
}


@contextmanager
def standins(names: tuple[str, ...]) -> Iterator[None]:
    saved = {name: getattr(*SITES[name]) for name in names}
    try:
        for name, real in saved.items():
            setattr(*SITES[name], _Swap(real, name))
        yield
    finally:
        for name, real in saved.items():
            setattr(*SITES[name], real)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("20b", "120b"), default="20b")
    parser.add_argument("--contexts", default="1024,32768")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    config = GPT_OSS_20B if args.model == "20b" else GPT_OSS_120B
    contexts = [int(n) for n in args.contexts.split(",")]
    weights = random_weights_on_gpu(config)
    weights = replace(weights, embedding=weights.embedding.cuda())  # as the loader on an H100
    table = build_ops(TORCH_OPS, torch.device("cuda"))
    for layer in weights.layers:  # the Triton table's expert layout, as load_generator does,
        layer.experts = table.prepare_experts(layer.experts)  # and the aids that fit
    context = max(131072 if args.model == "20b" else 65536, max(contexts) + 512)
    add_decoding_aids(weights, table, config, torch.device("cuda"), False, context)
    cache = KVCache(config, context, torch.device("cuda"))
    greedy = SamplingOptions(temperature=0, max_tokens=129)
    for variant in args.variants.split(","):
        with standins(VARIANTS[variant]):
            # a fresh op table and model: the decode graph captures the stand-ins
            ops = build_ops(TORCH_OPS, torch.device("cuda"))
            model = Transformer(config, weights, ops, context)
            cache.truncate(0)
            gen = LocalGenerator(model, cache, name=variant)
            gen.prefill_chunk = min(8192, cache.max_step)
            list(gen.generate(prompt_ids(1024, 1), stop_tokens=(), sampling=greedy))
            for n in contexts:
                rates = []
                for _ in range(2):
                    gen.reset()
                    list(gen.generate(prompt_ids(n, 4), stop_tokens=(), sampling=greedy))
                    rates.append(round(gen.last_stats.decode_tokens_per_second, 1))
                row = {"model": args.model, "variant": variant, "standins": VARIANTS[variant],
                       "context": n, "decode_tok_s": max(rates), "runs": rates,
                       "device": torch.cuda.get_device_name()}  # fmt: skip
                print(json.dumps(row), flush=True)
            del gen, model


if __name__ == "__main__":
    main()
