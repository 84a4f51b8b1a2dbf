"""End-to-end benchmark on one GPU: our engine and, in the same run, the peers that run there.

    python benchmarks/engine.py --checkpoint DIR [--impl ours,parity,transformers,reference]

Makes the random gpt-oss-20b checkpoint under DIR if it is missing (DIR/original for our engine
and the official reference, DIR/hf for transformers; one seed, so both hold the same weights),
then runs each implementation in its own subprocess (so each starts with an empty GPU and its
peak memory is its own) and prints one JSON line per figure:

    {"impl": "ours", "figure": "decode_tok_s", "context": 1024, "value": 123.4, ...}

Figures: load seconds; peak GPU GiB (after 8k-token prefill chunks, and, in a fresh process
with the default settings, after a 32k-token prompt at the full context); decode tokens/s after
a 1k and a 32k prompt, and after 1k with and without the decode step launched ahead
(`decode_pipeline`; GPTOSS_PIPELINE=0 turns it off for the whole run); prefill seconds for 2k
and 8k prompts; second-turn time to first token
(50 new tokens after a 4k history, with and without the short-prefill CUDA graphs); greedy
agreement of the Triton and torch engines over 128 tokens and max |dlogit|
against transformers. `--impl ours4k`: decode after 1k and 3k prompts with a 4,096-token
context (a small KV cache). Prompts are random token ids (random weights make any text
meaningless). Decode figures are greedy unless they say otherwise: greedy steps go through the
unembedding's int8 screen when the loader built one (`"screen": true` on the context line;
GPTOSS_SCREEN=0 turns it off), sampled ones through the full unembedding; both read the
attention projections (and sampled ones the unembedding) from their 12-bit lossless copies when
the loader built them (`"compact": true`; GPTOSS_COMPACT=0 turns them off).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
SEED = 7
PARITY_PROMPT = 256  # > the 128-token sliding window


def emit(impl: str, figure: str, value: float | int | str, **extra: object) -> None:
    row = {"impl": impl, "figure": figure, "value": value, **extra}
    print(json.dumps(row), flush=True)


def prompt_ids(n: int, seed: int = SEED) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 199_998, (n,), generator=g).tolist()  # below the special tokens


def peak_gib() -> float:
    return round(torch.cuda.max_memory_reserved() / 2**30, 2)


def gib(n_bytes: int) -> float:
    return round(n_bytes / 2**30, 3)


def ensure_checkpoints(root: Path, impls: list[str]) -> None:
    from gptoss_chat.model.config import GPT_OSS_20B
    from gptoss_chat.model.layout import Layout
    from gptoss_chat.model.random_checkpoint import write_random_checkpoint

    for layout, sub in ((Layout.ORIGINAL, "orig"), (Layout.HF, "hf")):
        if sub == "hf" and "transformers" not in impls:
            continue
        if sub == "orig" and not {"ours", "ours4k", "parity", "opcheck", "reference"} & set(impls):
            continue
        target = root / sub
        if (target / "done").exists():
            continue
        started = time.perf_counter()
        write_random_checkpoint(target, GPT_OSS_20B, layout, seed=0, device=torch.device("cuda"))
        (target / "done").write_text("ok\n")
        emit("setup", f"write_{sub}_seconds", round(time.perf_counter() - started, 1))


# --- our engine ---------------------------------------------------------------------------------


def _run(gen, prompt: list[int], max_tokens: int, consumer_us: float = 0.0, sampling=None):
    """Greedy `max_tokens` after `prompt` (or `sampling`); `consumer_us` of host work per token
    stands in for a UI consuming the stream. Returns (tokens, GenerationStats)."""
    from gptoss_chat.generator import SamplingOptions

    sampling = sampling or SamplingOptions(temperature=0, max_tokens=max_tokens)
    tokens = []
    for token in gen.generate(prompt, stop_tokens=(), sampling=sampling):
        tokens.append(token)
        if consumer_us:
            until = time.perf_counter() + consumer_us * 1e-6
            while time.perf_counter() < until:  # busy, holding the GIL, as a UI thread would
                pass
    torch.cuda.synchronize()
    return tokens, gen.last_stats


def _aids(weights) -> dict[str, bool]:
    """Which decoding aids the weights carry (`generator.add_decoding_aids`), for the report."""
    return dict(screen=weights.unembedding_screen is not None,
                compact=not isinstance(weights.layers[0].qkv_weight, torch.Tensor),
                compact_unembedding=weights.unembedding_compact is not None)  # fmt: skip


def worker_ours(root: Path, quick: bool) -> None:
    from gptoss_chat.model.generator import load_generator

    started = time.perf_counter()
    gen = load_generator(root / "orig", device="cuda")
    torch.cuda.synchronize()
    emit("ours", "load_seconds", round(time.perf_counter() - started, 2))
    weights = gen.model.weights
    emit("ours", "context", gen.context_length, kv_cache_gib=round(gen.cache.nbytes / 2**30, 2),
         **_aids(weights))  # fmt: skip
    emit("ours", "peak_gib_after_load", peak_gib())
    gen.prefill_chunk = min(8192, gen.cache.max_step)
    _run(gen, prompt_ids(2048, 1), 4)  # compile, autotune, capture the decode graph
    gen.reset()
    _run(gen, prompt_ids(40, 2), 4)  # short prefill shapes too: captures the 64-row graph
    _report_tuning()
    for n in (2048, 8192):
        gen.reset()
        _, stats = _run(gen, prompt_ids(n, 3), 1)
        emit("ours", "prefill_seconds", round(stats.time_to_first_token, 4), prompt=n,
             tok_s=round(n / stats.time_to_first_token))  # fmt: skip
    for n in (1024,) if quick else (1024, 32768):
        _decode_after(gen, "ours", n, pipeline=gen.pipeline)
    _pipeline_ab(gen)
    _second_turn(gen, "second_turn_ttft_ms")
    graphs, gen.prefill_graphs = gen.prefill_graphs, None
    _second_turn(gen, "second_turn_ttft_ms_eager")  # the same without the prefill graphs
    gen.prefill_graphs = graphs
    if graphs is None or graphs.capture_error:
        emit("ours", "prefill_graphs_off", graphs.capture_error if graphs else "not built")
    emit("ours", "peak_gib", peak_gib(), context=gen.context_length, prefill_chunk=8192)
    _profile_decode(gen)


def _decode_after(gen, impl: str, n: int, **extra: object):
    """Greedy decode of 128 tokens after an n-token prompt, from an empty cache: emits its
    decode_tok_s and returns the run's stats."""
    gen.reset()
    _, stats = _run(gen, prompt_ids(n, 4), 129)
    rate = stats.decode_tokens_per_second
    emit(impl, "decode_tok_s", round(rate, 1), context=n, ms_per_token=round(1e3 / rate, 3),
         **extra)  # fmt: skip
    return stats


def _pipeline_ab(gen) -> None:
    """Decode tok/s after a 1k prompt with the step launched ahead (`decode_pipeline`) and
    without (what GPTOSS_PIPELINE=0 runs), alternating, best of 3 each; greedy and top-p
    sampling; with no consumer and with 300 us of consumer work per token."""
    from gptoss_chat.generator import SamplingOptions

    top_p = SamplingOptions(temperature=1.0, top_p=0.9, seed=1, max_tokens=129)
    default = gen.pipeline
    for label, sampling in (("greedy", None), ("top_p", top_p)):
        for consumer_us in (0, 300):
            best = {True: 0.0, False: 0.0}
            for _ in range(3):
                for pipeline in (True, False):
                    gen.pipeline = pipeline
                    gen.reset()
                    _, stats = _run(gen, prompt_ids(1024, 4), 129, consumer_us, sampling)
                    best[pipeline] = max(best[pipeline], stats.decode_tokens_per_second)
            emit("ours", "decode_tok_s_pipeline_ab", round(best[True], 1), context=1024,
                 unpipelined=round(best[False], 1), gain=round(best[True] / best[False], 3),
                 sampling=label, consumer_us=consumer_us)  # fmt: skip
    gen.pipeline = default
    steps = gen._pipelined
    if steps is not None and steps.capture_error:
        emit("ours", "sampling_graph_off", steps.capture_error)


def _second_turn(gen, figure: str, repeats: int = 5) -> None:
    """Time to first token of a 50-token follow-up after a 4k-token history (its answer's
    first token + 50 new ids are prefilled: 51 tokens), best and median of `repeats` runs."""
    times = []
    for _ in range(repeats):
        gen.reset()
        history = prompt_ids(4096, 5)
        tokens, _ = _run(gen, history, 1)
        follow_up = history + tokens + prompt_ids(50, 6)
        _, stats = _run(gen, follow_up, 1)
        times.append(stats.time_to_first_token * 1e3)
    times.sort()
    emit("ours", figure, round(times[len(times) // 2], 2), best=round(times[0], 2),
         worst=round(times[-1], 2), runs=len(times), cached=stats.cached_tokens,
         new=stats.prompt_tokens - stats.cached_tokens)  # fmt: skip


def worker_ours_memory(root: Path) -> None:
    """GPU memory the way a user of a 16 GB card runs: a fresh process, the full 131,072-token
    context, the embedding table on the host (what the loader picks when the GPU is that small),
    the default prefill chunks of 1024, a 32k-token prompt and 128 decoded tokens."""
    from gptoss_chat.model.generator import load_generator

    gen = load_generator(root / "orig", device="cuda", embedding_on_host=True)
    torch.cuda.synchronize()
    report = gen.load_report
    after_load = torch.cuda.max_memory_reserved(), torch.cuda.max_memory_allocated()
    emit("ours", "memory_after_load_gib", gib(after_load[0]), allocated=gib(after_load[1]),
         weights_gpu=gib(report.weight_bytes), weights_host=gib(report.host_weight_bytes),
         kv_cache=gib(report.kv_cache_bytes), context=gen.context_length)  # fmt: skip
    tokens, stats = _run(gen, prompt_ids(32768, 4), 128)
    reserved, allocated = torch.cuda.max_memory_reserved(), torch.cuda.max_memory_allocated()
    emit("ours", "peak_gib_full_context_default_chunk", gib(reserved), allocated=gib(allocated),
         transient_reserved=gib(reserved - after_load[0]), context=gen.context_length,
         prefill_chunk=gen.prefill_chunk, prompt=32768, decoded=len(tokens),
         cold_prefill_s=round(stats.time_to_first_token, 3),
         cold_decode_tok_s=round(stats.decode_tokens_per_second, 1))  # fmt: skip


def _report_tuning() -> None:
    """The block sizes each autotuned kernel chose on this GPU (to pin them as defaults)."""
    from gptoss_chat.kernels import gemv, moe_decode, moe_prefill

    tuned = {"gemv": gemv._gemv_tuned, "moe_mlp1": moe_decode._mlp1_tuned,
             "moe_mlp2": moe_decode._mlp2_tuned, "grouped_mlp1": moe_prefill._mlp1_tuned,
             "grouped_mlp2": moe_prefill._mlp2_tuned}  # fmt: skip
    for name, tuner in tuned.items():
        for key, config in getattr(tuner, "cache", {}).items():
            emit("tuning", name, str(config), key=str(key)[:120])


def _profile_decode(gen) -> None:
    """Where a graph-replayed decode step's time goes, by kernel name (top 12), then the same for
    a 2k-token prefill."""
    from torch.profiler import ProfilerActivity, profile

    gen.reset()
    _run(gen, prompt_ids(1024, 4), 3)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        _run(gen, [*prompt_ids(1024, 4), 1], 17)
    _top_kernels(prof, "profile_decode_us")
    gen.reset()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        started = time.perf_counter()
        _run(gen, prompt_ids(2048, 3), 1)
        wall = time.perf_counter() - started
    emit("ours", "profile_prefill_wall_s", round(wall, 4), prompt=2048)
    _top_kernels(prof, "profile_prefill_us")


def _top_kernels(prof, figure: str) -> None:
    rows = []
    for evt in prof.key_averages():
        if evt.device_time_total > 0:
            rows.append((evt.device_time_total, evt.count, evt.key))
    rows.sort(reverse=True)
    emit("ours", f"{figure}_total", round(sum(r[0] for r in rows), 1))
    for total, count, key in rows[:14]:
        emit("ours", figure, round(total, 1), kernel=key[:80], calls=count)


def random_weights_on_gpu(config, seed: int = 0, device: str = "cuda"):  # -> ModelWeights
    """Random weights built straight into GPU memory (the 120b checkpoint, 65 GB, exceeds the
    benchmark machine's disk), drawn like the random checkpoints: linear ~ N(0, 1/fan_in), MXFP4
    scales giving the same spread, norms near 1."""
    import math

    from gptoss_chat.model.ops import ExpertWeights
    from gptoss_chat.model.random_checkpoint import FP4_RMS
    from gptoss_chat.model.weights import LayerWeights, ModelWeights

    dev = torch.device(device)
    g = torch.Generator(device=dev).manual_seed(seed)
    c = config

    def normal(*shape: int, std: float, mean: float = 0.0, dtype=torch.bfloat16) -> torch.Tensor:
        return (torch.randn(shape, generator=g, device=dev) * std + mean).to(dtype)

    def fp4(rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
        blocks = torch.randint(0, 256, (c.num_experts, rows, cols // 32, 16), generator=g,
                               device=dev, dtype=torch.uint8)  # fmt: skip
        exponent = round(math.log2(1 / (FP4_RMS * math.sqrt(cols))))
        jitter = torch.randint(-1, 2, (c.num_experts, rows, cols // 32), generator=g, device=dev)
        return blocks, (127 + exponent + jitter).to(torch.uint8)

    hidden, qkv = c.hidden_size, c.qkv_dim
    # the embedding table on the host, as load_generator keeps it on a GPU; drawn first so the
    # GPU block it passes through is reused by the layers instead of adding to the peak
    embedding = normal(c.vocab_size, hidden, std=1.0).cpu()
    layers = []
    for _ in range(c.num_hidden_layers):
        b1, s1 = fp4(2 * c.intermediate_size, hidden)
        b2, s2 = fp4(hidden, c.intermediate_size)
        experts = ExpertWeights(
            gate_weight=normal(c.num_experts, hidden, std=hidden**-0.5),
            gate_bias=normal(c.num_experts, std=0.1),
            mlp1_blocks=b1, mlp1_scales=s1,
            mlp1_bias=normal(c.num_experts, 2 * c.intermediate_size, std=0.1),
            mlp2_blocks=b2, mlp2_scales=s2,
            mlp2_bias=normal(c.num_experts, hidden, std=0.1),
        )  # fmt: skip
        q_dim = c.num_attention_heads * c.head_dim
        layers.append(LayerWeights(
            attn_norm=normal(hidden, std=0.1, mean=1.0, dtype=torch.float32),
            qkv_weight=normal(qkv, hidden, std=hidden**-0.5), qkv_bias=normal(qkv, std=0.1),
            sinks=normal(c.num_attention_heads, std=1.0, dtype=torch.float32),
            out_weight=normal(hidden, q_dim, std=q_dim**-0.5), out_bias=normal(hidden, std=0.1),
            mlp_norm=normal(hidden, std=0.1, mean=1.0, dtype=torch.float32), experts=experts,
        ))  # fmt: skip
    return ModelWeights(
        embedding=embedding, layers=layers,
        norm=normal(hidden, std=0.1, mean=1.0, dtype=torch.float32),
        unembedding=normal(c.vocab_size, hidden, std=hidden**-0.5),
    )  # fmt: skip


def worker_ours4k(root: Path) -> None:
    """Our engine run with a 4,096-token context (what `--context 4096` gives: a small KV cache):
    decode after a 1k and a 3k prompt. A full layer's decode attention sizes its key ranges by
    the cache (`attention_decode.decode_splits`), so this is the figure a small cache changes."""
    from gptoss_chat.model.generator import load_generator

    gen = load_generator(root / "orig", device="cuda", context=4096)
    _run(gen, prompt_ids(1024, 1), 4)  # compile, capture the decode graph
    for n in (1024, 3000):
        _decode_after(gen, "ours4k", n, cache=gen.context_length)


def worker_ours120b(root: Path) -> None:
    """gpt-oss-120b shapes, weights built on the GPU, 64k context: decode after a 1k prompt."""
    from gptoss_chat.kernels import build_ops
    from gptoss_chat.model.config import GPT_OSS_120B
    from gptoss_chat.model.generator import (
        TRITON_WORKSPACE_BYTES,
        LocalGenerator,
        add_decoding_aids,
    )
    from gptoss_chat.model.kv_cache import KVCache, cache_bytes
    from gptoss_chat.model.ops import TORCH_OPS
    from gptoss_chat.model.transformer import Transformer

    del root
    started = time.perf_counter()
    weights = random_weights_on_gpu(GPT_OSS_120B)
    device = torch.device("cuda")
    # The loader's rule (`generator.embedding_fits_on_device`): the weights (60.8 GiB here) and
    # the full 131k-token cache leave room on an 80 GB GPU, so the table goes there too.
    free, _ = torch.cuda.mem_get_info()
    full_cache = cache_bytes(GPT_OSS_120B, GPT_OSS_120B.max_context_length)
    if free >= weights.embedding.nbytes + full_cache + TRITON_WORKSPACE_BYTES:
        weights.embedding = weights.embedding.cuda()
    ops = build_ops(TORCH_OPS, device)
    for layer in weights.layers:  # as load_generator does: the table's expert layout, and the
        layer.experts = ops.prepare_experts(layer.experts)  # screen and compact copies that fit
    add_decoding_aids(weights, ops, GPT_OSS_120B, device, not weights.embedding.is_cuda, None)
    context = 65536
    cache = KVCache(GPT_OSS_120B, context, device)
    model = Transformer(GPT_OSS_120B, weights, ops, context)
    gen = LocalGenerator(model, cache, name="120b")
    emit("ours120b", "build_seconds", round(time.perf_counter() - started, 1),
         weight_gib=round(weights.nbytes() / 2**30, 2), context=context,
         embedding=weights.embedding.device.type, **_aids(weights))  # fmt: skip
    _run(gen, prompt_ids(1024, 1), 4)
    stats = _decode_after(gen, "ours120b", 1024)
    emit("ours120b", "prefill_seconds", round(stats.time_to_first_token, 4), prompt=1024)
    emit("ours120b", "peak_gib", peak_gib(), context=context)


def worker_parity(root: Path) -> None:
    """Triton engine vs torch engine: prompt logits and 128 greedy tokens."""
    from gptoss_chat.model.generator import load_generator

    prompt = prompt_ids(PARITY_PROMPT, 8)
    results = {}
    for backend in ("triton", "torch"):
        gen = load_generator(root / "orig", device="cuda", context=4096, backend=backend)
        with torch.inference_mode():
            logits = gen.model.forward(torch.tensor(prompt, device="cuda"), gen.cache,
                                       all_logits=True)  # fmt: skip
        gen.reset()
        tokens, _ = _run(gen, prompt, 128)
        results[backend] = (logits.float().cpu(), tokens)
        torch.save(logits.float().cpu(), root / f"logits_{backend}.pt")
        del gen, logits
        torch.cuda.empty_cache()
    (lt, tt), (lr, tr) = results["triton"], results["torch"]
    _compare("triton_vs_torch", lt, lr)
    same = next((i for i, (a, b) in enumerate(zip(tt, tr, strict=True)) if a != b), len(tt))
    emit("parity", "greedy_identical_prefix", same, of=len(tt),
         matching=sum(a == b for a, b in zip(tt, tr, strict=True)))  # fmt: skip


def worker_opcheck(root: Path) -> None:
    """Op by op on real 20b activations: run the torch table, call each Triton op on the same
    inputs (cloned, for ops that write the cache) and report the worst relative error per op."""
    from dataclasses import replace

    from gptoss_chat.kernels import build_ops
    from gptoss_chat.model.generator import load_generator

    gen = load_generator(root / "orig", device="cuda", context=4096, backend="torch")
    torch_ops = gen.model.ops
    triton_ops = build_ops(torch_ops, gen.device)
    worst: dict[str, tuple[float, int]] = {}

    def err(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = a.double(), b.double()
        return float((a - b).norm() / b.norm().clamp_min(1e-30))

    def wrap(name: str):
        ref_fn, cand_fn = getattr(torch_ops, name), getattr(triton_ops, name)

        def fn(*args):
            cloned = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
            out_c = cand_fn(*cloned)
            out_r = ref_fn(*args)
            e = err(out_c, out_r)
            if name in ("rope_cache", "rope_attention_decode"):  # they write the cache
                e = max(e, err(cloned[3], args[3]), err(cloned[4], args[4]))
            key = f"{name}_T{args[0].shape[0] if args[0].dim() > 0 else 0}"
            if e > worst.get(key, (-1.0, 0))[0]:
                worst[key] = (e, len(worst))
            return out_r

        return fn

    names = ("rms_norm", "attention_prefill", "attention_decode", "moe", "unembedding", "linear",
             "rope_cache", "rope_attention_decode")  # fmt: skip
    gen.model.ops = replace(torch_ops, **{n: wrap(n) for n in names})
    prompt = prompt_ids(PARITY_PROMPT, 8)
    with torch.inference_mode():
        gen.model.forward(torch.tensor(prompt, device="cuda"), gen.cache)
        for token in prompt[:4]:
            gen.model.forward(torch.tensor([token], device="cuda"), gen.cache)
    for key, (e, _) in sorted(worst.items()):
        emit("opcheck", key, round(e, 6))


def _compare(label: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """max and mean |dlogit| over all prompt positions, the logits' spread, top-1 agreement."""
    delta = (ours - theirs).abs()
    agree = (ours.argmax(-1) == theirs.argmax(-1)).float().mean().item()
    emit("parity", f"{label}_max_dlogit", round(delta.max().item(), 4),
         mean=round(delta.mean().item(), 5), logit_std=round(theirs.std().item(), 3),
         argmax_agreement=round(agree, 4), positions=ours.shape[0])  # fmt: skip


# --- peers --------------------------------------------------------------------------------------


def worker_transformers(root: Path) -> None:
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    started = time.perf_counter()
    kwargs = {}
    try:
        from transformers import Mxfp4Config

        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
    except ImportError:
        pass
    model = AutoModelForCausalLM.from_pretrained(
        root / "hf", dtype=torch.bfloat16, device_map="cuda", **kwargs
    )
    torch.cuda.synchronize()
    emit("transformers", "load_seconds", round(time.perf_counter() - started, 2),
         version=transformers.__version__)  # fmt: skip
    with torch.inference_mode():
        ids = torch.tensor([prompt_ids(PARITY_PROMPT, 8)], device="cuda")
        theirs = model(ids).logits[0].float().cpu()
        for backend in ("triton", "torch"):
            path = root / f"logits_{backend}.pt"
            if path.exists():
                _compare(f"{backend}_vs_transformers", torch.load(path), theirs)
        for n in (2048, 8192):
            ids = torch.tensor([prompt_ids(n, 3)], device="cuda")
            try:
                model(ids[:, :64])
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                model(ids, logits_to_keep=1)
                torch.cuda.synchronize()
                emit("transformers", "prefill_seconds", round(time.perf_counter() - t0, 4),
                     prompt=n)  # fmt: skip
            except torch.OutOfMemoryError:
                emit("transformers", "prefill_seconds", "OOM", prompt=n)
                torch.cuda.empty_cache()
        ids = torch.tensor([prompt_ids(1024, 4)], device="cuda")
        times = {}
        for new in (1, 65):
            model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False)
            torch.cuda.synchronize()
            times[new] = time.perf_counter() - t0
        emit("transformers", "decode_tok_s", round(64 / (times[65] - times[1]), 1), context=1024)
    emit("transformers", "peak_gib", peak_gib())


def worker_reference(root: Path) -> None:
    from gpt_oss.torch.model import Transformer

    started = time.perf_counter()
    model = Transformer.from_checkpoint(str(root / "orig" / "original"), device="cuda")
    torch.cuda.synchronize()
    emit("reference", "load_seconds", round(time.perf_counter() - started, 2))
    with torch.inference_mode():
        for n, steps in ((8, 16), (1024, 4)):
            tokens = prompt_ids(n, 4)
            try:
                model(torch.tensor(tokens, device="cuda"))  # warm-up
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(steps):  # the reference re-runs the whole sequence per token
                    logits = model(torch.tensor(tokens, device="cuda"))[-1]
                    tokens.append(int(torch.argmax(logits)))
                emit("reference", "decode_tok_s", round(steps / (time.perf_counter() - t0), 2),
                     context=n)  # fmt: skip
            except torch.OutOfMemoryError:
                emit("reference", "decode_tok_s", "OOM", context=n)
                torch.cuda.empty_cache()
    emit("reference", "peak_gib", peak_gib())


WORKERS = {"ours": worker_ours, "ours_memory": worker_ours_memory, "parity": worker_parity,
           "transformers": worker_transformers, "reference": worker_reference,
           "opcheck": worker_opcheck, "ours120b": worker_ours120b,
           "ours4k": worker_ours4k}  # fmt: skip
IMPL_WORKERS = {"ours": ("ours_memory", "ours")}
"""--impl names that run several workers, each in its own fresh process."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="folder for checkpoints")
    parser.add_argument("--impl", default="ours,parity,transformers,reference")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="skip the 32k-context decode")
    parser.add_argument("--timeout", type=int, default=400, help="seconds per implementation")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/engine.py needs a CUDA GPU", file=sys.stderr)
        return 2
    if args.worker:
        fn = WORKERS[args.worker]
        fn(args.checkpoint, args.quick) if args.worker == "ours" else fn(args.checkpoint)
        return 0
    emit("setup", "device", torch.cuda.get_device_name(), torch=torch.__version__,
         date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))  # fmt: skip
    impls = args.impl.split(",")
    ensure_checkpoints(args.checkpoint, impls)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    workers = [w for impl in impls for w in IMPL_WORKERS.get(impl, (impl,))]
    for worker in workers:
        cmd = [sys.executable, __file__, "--checkpoint", str(args.checkpoint), "--worker", worker]
        cmd += ["--quick"] if args.quick else []
        try:
            done = subprocess.run(cmd, env=env, timeout=args.timeout, check=False)
            if done.returncode:
                emit(worker, "error", f"exit status {done.returncode}")
        except subprocess.TimeoutExpired:
            emit(worker, "error", f"timed out after {args.timeout} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
