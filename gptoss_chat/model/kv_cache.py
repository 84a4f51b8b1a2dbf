"""Static KV buffers for one conversation, reused across turns by common prefix.

Full-attention layers get `context` slots. Sliding layers keep a ring of `sliding_window +
slack` slots: the window itself, plus slack so that (a) a prefill chunk of up to slack + 1
tokens never overwrites a key its own queries still need and (b) a new turn can roll back up to
slack + 1 tokens and still find the window before the rollback point. Rolling back matters for
chat: Harmony drops the previous turn's analysis when it renders the next prompt, so the common
prefix usually ends a few hundred to a few thousand tokens before the end of the cache.

Buffers are allocated once and the write position lives on the device (`offset`), so a decode
step reads and advances it without the host: the shape of graph-captured decode.
"""

from __future__ import annotations

import torch

from gptoss_chat.model.config import ModelConfig

DEFAULT_SLIDING_SLACK = 8192


def kv_bytes_per_token(config: ModelConfig, dtype: torch.dtype = torch.bfloat16) -> int:
    """Bytes one position costs in one layer (K and V)."""
    return 2 * config.num_key_value_heads * config.head_dim * dtype.itemsize


def cache_bytes(
    config: ModelConfig, context: int, sliding_slack: int = DEFAULT_SLIDING_SLACK
) -> int:
    per_token = kv_bytes_per_token(config)
    return per_token * sum(_slots(config, layer, context, sliding_slack) for layer in
                           range(config.num_hidden_layers))  # fmt: skip


def _slots(config: ModelConfig, layer: int, context: int, slack: int) -> int:
    if config.is_sliding(layer):
        return min(context, config.sliding_window + slack)
    return context


class KVCache:
    def __init__(
        self,
        config: ModelConfig,
        context: int,
        device: torch.device,
        *,
        sliding_slack: int = DEFAULT_SLIDING_SLACK,
        dtype: torch.dtype = torch.bfloat16,
    ) -> None:
        if context < 1:
            raise ValueError("the context must hold at least one token")
        self.context = context
        self.sliding_window = config.sliding_window
        shape = (config.num_key_value_heads, config.head_dim)
        self.slots = [
            _slots(config, layer, context, sliding_slack)
            for layer in range(config.num_hidden_layers)
        ]
        self.k = [torch.zeros((s, *shape), dtype=dtype, device=device) for s in self.slots]
        self.v = [torch.zeros((s, *shape), dtype=dtype, device=device) for s in self.slots]
        self.offset = torch.zeros((), dtype=torch.int64, device=device)
        """Position of the next token to write (0-dim, on the device)."""
        self.tokens: list[int] = []
        """Host mirror: the ids whose K/V the buffers hold, in position order."""
        self.written = 0
        """End of the highest position written since the cache was last emptied, padding of
        graph-run chunks included (`extend`): what the sliding rings may have overwritten."""
        ring_slots = [s for layer, s in enumerate(self.slots) if s < context and
                      config.is_sliding(layer)]  # fmt: skip
        self.max_step = min(ring_slots, default=context) - (
            self.sliding_window - 1 if ring_slots else 0
        )
        """Longest prefill chunk, and longest rollback, the sliding rings allow."""

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store k, v [T, Hkv, D] at positions offset .. offset+T-1 (slot = position % slots)."""
        slots = self.slots[layer]
        index = (self.offset + torch.arange(k.shape[0], device=k.device)) % slots  # [T]
        self.k[layer].index_copy_(0, index, k)
        self.v[layer].index_copy_(0, index, v)

    def advance(self, n_tokens: int) -> None:
        self.offset += n_tokens

    def extend(self, tokens: list[int], *, padding: int = 0) -> None:
        """Record that a forward wrote `tokens` at the end of the cache, followed by `padding`
        scratch positions (a chunk padded to a graph's size, see `prefill_graph`; a decode step
        launched ahead that may be dropped, see `decode_pipeline`)."""
        self.tokens.extend(tokens)
        self.written = max(self.written, len(self.tokens) + padding)

    def reusable_prefix(self, tokens: list[int]) -> int:
        """How many leading ids of `tokens` need no prefill: their longest common prefix with the
        cache, minus one so the last prompt token is always computed (its logits pick the next
        token), and 0 if rolling back that far would need keys the sliding rings dropped.

        A ring of S slots keeps position p until position p + S is written. A query at `common`
        needs keys from common - W + 1 on, so every position written so far (`written`, which
        only a truncation to 0 lowers: later positions that were written and then rolled back
        still evicted their slot's older key) must stay below common - W + 1 + S, that is
        written - common <= S - W + 1 = max_step."""
        limit = min(len(self.tokens), len(tokens) - 1)
        common = 0
        while common < limit and self.tokens[common] == tokens[common]:
            common += 1
        if max(len(self.tokens), self.written) - common > self.max_step:
            return 0
        return common

    def truncate(self, length: int) -> None:
        """Forget every position from `length` on (their slots are simply overwritten later)."""
        del self.tokens[length:]
        self.offset.fill_(length)
        if length == 0:  # every position is rewritten before it is read again
            self.written = 0

    def reset(self) -> None:
        self.truncate(0)
