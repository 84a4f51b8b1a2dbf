"""The local Generator: prefill, decode one token, sample, with prefix reuse across calls.

`load_generator(model_dir)` is the entry point: it finds the checkpoint, picks the device and the
kernel table, sizes the KV cache and returns a `LocalGenerator`. One generator serves one
conversation: each `generate` call reuses the KV entries of the longest prefix it shares with
what the cache holds, so a chat turn only prefills its new tokens.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

import torch

from gptoss_chat.generator import (
    CancelToken,
    ContextOverflowError,
    GenerationStats,
    GeneratorError,
    SamplingOptions,
)
from gptoss_chat.model.config import GPT_OSS_20B, GPT_OSS_120B, ModelConfig
from gptoss_chat.model.decode_graph import DecodeGraph
from gptoss_chat.model.decode_pipeline import PipelinedDecode, pipeline_enabled
from gptoss_chat.model.kv_cache import DEFAULT_SLIDING_SLACK, KVCache, cache_bytes
from gptoss_chat.model.ops import BackendUnavailableError, Ops, PreparedLinear, select_ops
from gptoss_chat.model.prefill_graph import PrefillGraphs
from gptoss_chat.model.transformer import Transformer
from gptoss_chat.model.weights import (
    CheckpointInfo,
    ModelWeights,
    ProgressCallback,
    find_checkpoint,
    load_weights,
)

DEFAULT_PREFILL_CHUNK = 1024
WORKSPACE_BYTES = {"cuda": 4 * 1024**3, "cpu": 1024**3}
"""Memory kept free beside weights and KV cache for activations and decoded experts (the torch
table decodes experts to bf16 and holds up to 512 MiB of attention scores per call)."""
TRITON_WORKSPACE_BYTES = 512 * 1024**2
"""The same for the Triton table on a GPU: it decodes no expert to bf16 and builds no score
matrix, so a 1024-token chunk needs an estimated 0.3 GB (activations, the grouped MoE's per-pair
partials, the graphs' pools, cuBLAS workspace; benchmarks/engine.py measures it as
transient_reserved of peak_gib_full_context_default_chunk). On a 16 GB card (about 15.5 GiB
free) the 20b weights leave 3.8 GiB: the full context's 3.19 GiB of KV fits beside 0.5 GiB, not
beside 1 GiB."""
CONTEXT_GRANULE = 1024


@dataclass
class LoadReport:
    """What loading cost and decided; the UI shows `context_note` when it is not empty."""

    seconds: float
    weight_bytes: int
    """Weights on the engine's device."""
    kv_cache_bytes: int
    context: int
    context_note: str = ""
    host_weight_bytes: int = 0
    """Weights a GPU engine keeps in host memory (the embedding table by default)."""


class LocalGenerator:
    """Implements `gptoss_chat.generator.Generator` on the in-process engine."""

    def __init__(
        self,
        model: Transformer,
        cache: KVCache,
        *,
        name: str,
        prefill_chunk: int = DEFAULT_PREFILL_CHUNK,
        use_cuda_graph: bool = True,
        pipeline: bool | None = None,
    ) -> None:
        self.model = model
        self.cache = cache
        self.name = name
        self.context_length = cache.context
        self.last_stats = GenerationStats()
        self.prefill_chunk = max(1, min(prefill_chunk, cache.max_step))
        self.load_report: LoadReport | None = None
        self.decode_graph: DecodeGraph | None = None
        self.prefill_graphs: PrefillGraphs | None = None
        """Short chunks (a chat's follow-up turn) padded to a few sizes and graph-replayed."""
        if model.device.type == "cuda" and model.dtype == torch.bfloat16 and use_cuda_graph:
            if model.ops.graph_safe_decode:
                self.decode_graph = DecodeGraph(model, cache)
            if model.ops.graph_safe_prefill:
                self.prefill_graphs = PrefillGraphs(model, cache)
        self._active = 0
        """Id of the newest call; an older iterator resumed after a newer call just stops."""
        self.pipeline = pipeline_enabled() if pipeline is None else pipeline
        """Decode one step ahead (`decode_pipeline`); GPTOSS_PIPELINE=0 turns it off."""
        self._pipelined: PipelinedDecode | None = None
        self._sampling_rng: torch.Generator | None = None
        """One generator, reseeded per call: a captured sampling graph is bound to it."""

    @property
    def device(self) -> torch.device:
        return self.model.device

    def generate(
        self,
        tokens: Sequence[int],
        *,
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        prompt = [int(t) for t in tokens]
        if not prompt:
            raise GeneratorError("the prompt is empty: give at least one token")
        vocab = self.model.config.vocab_size
        bad = [t for t in prompt if not 0 <= t < vocab]
        if bad:
            raise GeneratorError(f"token id {bad[0]} is outside the vocabulary (0..{vocab - 1})")
        if len(prompt) + 1 > self.context_length:
            raise ContextOverflowError(len(prompt) + 1, self.context_length)
        if sampling.temperature < 0 or not 0 < sampling.top_p <= 1:
            raise GeneratorError("temperature must be >= 0 and top_p in (0, 1]")
        self._active += 1
        return self._run(self._active, prompt, frozenset(stop_tokens), sampling, cancel)

    def _run(
        self,
        call: int,
        prompt: list[int],
        stop_tokens: frozenset[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None,
    ) -> Iterator[int]:
        try:
            yield from self._steps(call, prompt, stop_tokens, sampling, cancel)
        except torch.OutOfMemoryError as exc:
            # The cache stays consistent: its host mirror only grows after a finished step,
            # and a step launched ahead is dropped (`_pipelined_steps`).
            raise GeneratorError(
                f"the {self.device.type} device ran out of memory while generating "
                f"({len(prompt)} prompt tokens); try a smaller --context or a shorter prompt"
            ) from exc

    def _steps(
        self,
        call: int,
        prompt: list[int],
        stop_tokens: frozenset[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None,
    ) -> Iterator[int]:
        stats = GenerationStats(prompt_tokens=len(prompt))
        self.last_stats = stats
        start = time.perf_counter()
        with torch.inference_mode():
            reused = self.cache.reusable_prefix(prompt)
            self.cache.truncate(reused)
            stats.cached_tokens = reused
            logits = self._prefill(prompt[reused:])  # [1, V]
            rng = self._rng(sampling)
            if self.pipeline:
                yield from self._pipelined_steps(call, logits, len(prompt), stop_tokens, sampling,
                                                 rng, stats, start, cancel)  # fmt: skip
                return
            limit = sampling.max_tokens
            while True:
                if (cancel is not None and cancel.cancelled) or call != self._active:
                    stats.stop_reason = "cancelled"
                    return
                if limit is not None and stats.generated_tokens >= limit:
                    stats.stop_reason = "length"
                    return
                token = int(
                    self.model.ops.sample(logits[0], sampling.temperature, sampling.top_p, rng)
                )
                stats.record_token(start)
                yield token
                if token in stop_tokens:
                    stats.stop_reason = "stop"
                    return
                if len(prompt) + stats.generated_tokens >= self.context_length:
                    stats.stop_reason = "context"
                    return
                if (cancel is not None and cancel.cancelled) or call != self._active:
                    stats.stop_reason = "cancelled"
                    return
                if limit is not None and stats.generated_tokens >= limit:
                    stats.stop_reason = "length"
                    return
                logits = self._decode(token)

    def _pipelined_steps(
        self,
        call: int,
        logits: torch.Tensor,
        prompt_tokens: int,
        stop_tokens: frozenset[int],
        sampling: SamplingOptions,
        rng: torch.Generator | None,
        stats: GenerationStats,
        started: float,
        cancel: CancelToken | None,
    ) -> Iterator[int]:
        """The loop above, one step ahead (`decode_pipeline`), after the prefill."""

        def stopped() -> bool:
            return (cancel is not None and cancel.cancelled) or call != self._active

        if stopped():
            stats.stop_reason = "cancelled"
            return
        if sampling.max_tokens is not None and sampling.max_tokens <= 0:
            stats.stop_reason = "length"
            return
        if self._pipelined is None or self._pipelined.graph is not self.decode_graph:
            self._pipelined = PipelinedDecode(self.model, self.cache, self.decode_graph)
        pipeline = self._pipelined
        pipeline.configure(sampling.temperature, sampling.top_p, rng)
        try:
            yield from pipeline.tokens(
                logits, prompt_tokens=prompt_tokens, stop_tokens=stop_tokens,
                limit=sampling.max_tokens, stats=stats, started=started, stopped=stopped,
            )  # fmt: skip
        finally:
            if call == self._active:  # else a newer call owns the cache (and truncated it)
                pipeline.discard()

    def _prefill(self, tokens: list[int]) -> torch.Tensor:
        """Run the uncached suffix in chunks; returns the last position's logits [1, V]."""
        logits = None
        for first in range(0, len(tokens), self.prefill_chunk):
            chunk = tokens[first : first + self.prefill_chunk]
            offset = len(self.cache.tokens)  # the host mirror of cache.offset
            graphs = self.prefill_graphs
            rows = graphs.bucket_for(len(chunk), offset) if graphs is not None else None
            if len(chunk) == 1:
                logits = self._decode(chunk[0])
            elif graphs is not None and rows is not None:
                logits = graphs.run(chunk, rows)
                self.cache.extend(chunk, padding=rows - len(chunk))
            else:
                # ids stay on the host: `embed` gathers there when the table lives there
                logits = self.model.forward(chunk, self.cache)
                self.cache.extend(chunk)
        assert logits is not None  # the cache always leaves at least one token to compute
        return logits

    def _decode(self, token: int) -> torch.Tensor:
        if self.decode_graph is not None:
            logits = self.decode_graph.step(token)  # [1, V]
        else:
            logits = self.model.forward([token], self.cache)  # [1, V]
        self.cache.extend([token])
        return logits

    def _rng(self, sampling: SamplingOptions) -> torch.Generator | None:
        if sampling.temperature <= 0:
            return None
        seed = sampling.seed if sampling.seed is not None else random.SystemRandom().getrandbits(63)
        if self._sampling_rng is None:
            self._sampling_rng = torch.Generator(device=self.device)
        return self._sampling_rng.manual_seed(seed)

    def reset(self) -> None:
        """Forget the cached conversation (the next call prefills everything)."""
        self.cache.reset()


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def free_memory(device: torch.device) -> int:
    """Bytes that new allocations on `device` can still use."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def choose_context(
    config: ModelConfig,
    requested: int | None,
    device: torch.device,
    workspace: int | None = None,
) -> tuple[int, str]:
    """The KV cache context: `requested`, else the model's full context if it fits, else the
    largest multiple of 1024 that fits beside `workspace` bytes (default: WORKSPACE_BYTES of
    the device type); with a note when it was shrunk."""
    maximum = config.max_context_length
    if requested is not None:
        if not 1 <= requested <= maximum:
            raise GeneratorError(f"--context must be between 1 and {maximum} for this model")
        return requested, ""
    if workspace is None:
        workspace = WORKSPACE_BYTES.get(device.type, WORKSPACE_BYTES["cpu"])
    budget = free_memory(device) - workspace
    if cache_bytes(config, maximum) <= budget:
        return maximum, ""
    context = maximum
    while context > CONTEXT_GRANULE and cache_bytes(config, context) > budget:
        context -= CONTEXT_GRANULE
    return context, (
        f"context limited to {context} tokens (of {maximum}) by free memory on {device.type}"
    )


def embedding_fits_on_device(info: CheckpointInfo, free_bytes: int) -> bool:
    """Whether `free_bytes` of GPU memory hold the checkpoint (an upper bound for the packed
    weights), the full-context KV cache and the Triton workspace: then the embedding table may
    stay on the GPU. On a 16 GB card (20b) it does not, on an 80 GB one it does."""
    weights = sum(path.stat().st_size for path in info.files)
    needed = weights + cache_bytes(info.config, info.config.max_context_length)
    return free_bytes >= needed + TRITON_WORKSPACE_BYTES


def screen_fits(
    config: ModelConfig, device: torch.device, embedding_on_host: bool, context: int | None
) -> bool:
    """Whether the unembedding's greedy screen (`Ops.prepare_unembedding`: about V x H bytes,
    0.58 GB at 20b size) may take GPU memory (`aid_fits`)."""
    return aid_fits(config, device, embedding_on_host, context, screen_bytes(config))


def compact_fits(
    config: ModelConfig, device: torch.device, embedding_on_host: bool, context: int | None
) -> bool:
    """Whether the compact copies of the attention projections and the unembedding
    (`compact_weights`: 12 bits a weight beside the dense bf16, 1.83 GB at 20b size, 2.3 GB at
    120b) may take GPU memory (`aid_fits`; the screen is built first)."""
    return aid_fits(config, device, embedding_on_host, context, compact_bytes(config))


def aid_fits(
    config: ModelConfig,
    device: torch.device,
    embedding_on_host: bool,
    context: int | None,
    aid_bytes: int,
) -> bool:
    """Whether a decoding aid (the screen, the compact copies) of `aid_bytes` may take GPU
    memory, asked before the KV cache is allocated: only when the embedding table stayed on the
    device (a card too small for the table has none to spare) and the free memory still holds
    the aid, the KV cache of the context asked for (the full one by default) and the workspace.
    The context comes first."""
    if device.type != "cuda":
        return True
    if embedding_on_host:
        return False
    needed = cache_bytes(config, context or config.max_context_length) + TRITON_WORKSPACE_BYTES
    return free_memory(device) >= needed + aid_bytes


def add_decoding_aids(
    weights: ModelWeights,
    ops: Ops,
    config: ModelConfig,
    device: torch.device,
    embedding_on_host: bool,
    context: int | None,
) -> None:
    """What the loader adds to loaded weights when they fit (`screen_fits`, `compact_fits`):
    greedy decoding's screen of the unembedding, then the compact copies (`compact_weights`)."""
    if screen_fits(config, device, embedding_on_host, context):
        weights.unembedding_screen = ops.prepare_unembedding(weights.unembedding)
    if compact_fits(config, device, embedding_on_host, context):
        compact_weights(weights, ops)


def compact_bytes(config: ModelConfig) -> int:
    """About what the compact copies of the attention projections and the unembedding take:
    12 bits a weight (the exception lists are ~0.2% more)."""
    q_dim = config.num_attention_heads * config.head_dim
    per_layer = (config.qkv_dim + q_dim) * config.hidden_size
    weights = config.num_hidden_layers * per_layer + config.vocab_size * config.hidden_size
    return weights * 3 // 2


def compact_weights(weights: ModelWeights, ops: Ops) -> None:
    """`Ops.prepare_linear` for the attention projections (decode reads them instead of the
    bf16 weights) and the unembedding (kept apart as `unembedding_compact`: greedy decoding's
    screen and prefill read the bf16 unembedding)."""
    for layer in weights.layers:
        layer.qkv_weight = ops.prepare_linear(layer.qkv_weight)
        layer.out_weight = ops.prepare_linear(layer.out_weight)
    compact = ops.prepare_linear(weights.unembedding)
    weights.unembedding_compact = compact if isinstance(compact, PreparedLinear) else None


def screen_bytes(config: ModelConfig) -> int:
    """About what the unembedding's screen takes: an int8 code per weight and 12 bytes a row."""
    return config.vocab_size * (config.hidden_size + 12)


def model_label(config: ModelConfig) -> str:
    for label, preset in (("gpt-oss-20b", GPT_OSS_20B), ("gpt-oss-120b", GPT_OSS_120B)):
        if config == preset:
            return label
    return f"gpt-oss ({config.num_hidden_layers} layers, {config.num_experts} experts)"


def load_generator(
    model_dir: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    context: int | None = None,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
    dtype: torch.dtype = torch.bfloat16,
    sliding_slack: int = DEFAULT_SLIDING_SLACK,
    embedding_on_host: bool | None = None,
) -> LocalGenerator:
    """Load a checkpoint folder (downloaded repo, its original/, or a HF layout) into a ready
    generator. Raises CheckpointError / GeneratorError with a message for the user.

    `embedding_on_host` keeps the embedding table in host memory, which saves its 1.16 GB of
    GPU memory at 20b and 120b size: a forward needs only T rows of it. The default
    (`embedding_fits_on_device`) does so only when the GPU could not otherwise hold the weights
    and the full context: gathering the rows on the host costs ~20-40 ms for an 8k prompt."""
    started = time.perf_counter()
    try:
        device = torch.device(device) if device is not None else default_device()
    except RuntimeError as exc:
        raise GeneratorError(f"unknown device {device!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GeneratorError("a CUDA device was requested but torch sees no CUDA GPU")
    info = find_checkpoint(model_dir)
    if dtype != torch.bfloat16:
        # float32 is the exact-parity mode; kernels are written for bf16 activations.
        if backend == "triton":
            raise GeneratorError("the triton backend runs bf16 only")
        backend = "torch"
    try:
        ops = select_ops(backend, device)
    except BackendUnavailableError as exc:
        raise GeneratorError(str(exc)) from None
    if embedding_on_host is None:
        embedding_on_host = device.type == "cuda" and not embedding_fits_on_device(
            info, free_memory(device)
        )
    weights = load_weights(info, device, progress, dtype=dtype, embedding_on_host=embedding_on_host)
    for layer in weights.layers:
        layer.experts = ops.prepare_experts(layer.experts)
    add_decoding_aids(weights, ops, info.config, device, embedding_on_host, context)
    if device.type == "cuda":  # the layouts prepare_experts replaced leave cached blocks behind
        torch.cuda.empty_cache()
    triton = device.type == "cuda" and ops.name == "triton"
    workspace = TRITON_WORKSPACE_BYTES if triton else None
    size, note = choose_context(info.config, context, device, workspace)
    cache = KVCache(info.config, size, device, sliding_slack=sliding_slack, dtype=dtype)
    model = Transformer(info.config, weights, ops, size)
    name = f"local {model_label(info.config)} ({device.type}, {ops.name})"
    generator = LocalGenerator(model, cache, name=name)
    generator.load_report = LoadReport(
        seconds=time.perf_counter() - started,
        weight_bytes=weights.nbytes(device.type),
        kv_cache_bytes=cache.nbytes,
        context=size,
        context_note=note,
        host_weight_bytes=weights.nbytes("cpu") if device.type != "cpu" else 0,
    )
    return generator
