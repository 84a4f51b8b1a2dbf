"""Argmax of one long float32 row in one launch (the sampler's last step, every decode token).

torch.argmax over the 201,088 logits takes ~9 us on an H100 (one of the few launches of a decode
step that is neither a weight stream nor overlapped with one). Here each of ~100 programs finds
the largest value of its slice (and the first index holding it), writes that pair, and takes a
ticket from an arrival counter; the program that draws the last ticket reduces the pairs in
program order, writes the index (and, for greedy decoding, copies that id's embedded row into
the next step's input: `argmax_into`) and resets the counter (one a device: launches on one
stream never overlap here). No second launch, no host sync (it runs inside the decode step's CUDA
graph), and the same answer as torch.argmax: the first index of the largest value.
NaN counts as the largest value, as in torch (a row holding both NaN and +inf may name the +inf).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import arrival_counters

_BLOCK = 1024
_STEPS = 2  # blocks a program: ~100 programs over gpt-oss's vocabulary


@triton.jit
def _argmax_kernel(x_ptr, value_ptr, index_ptr, counter_ptr, out_ptr, V,
                   PROGRAMS: tl.constexpr, PROGRAMS_PAD: tl.constexpr, BLOCK: tl.constexpr,
                   STEPS: tl.constexpr, table_ptr=None, row_ptr=None, H: tl.constexpr = 0,
                   H_PAD: tl.constexpr = 1, host_ptr=None, HOST: tl.constexpr = False):  # fmt: skip
    pid = tl.program_id(0)
    lanes = tl.arange(0, BLOCK)
    best_value = float("-inf")
    best_index = V  # none yet
    for step in tl.static_range(STEPS):
        at = (pid * STEPS + step) * BLOCK + lanes
        x = tl.load(x_ptr + at, mask=at < V, other=float("-inf"))
        x = tl.where(x != x, float("inf"), x)  # NaN is the largest value
        top = tl.max(x, axis=0)
        first = tl.min(tl.where((x == top) & (at < V), at, V), axis=0)
        # strictly larger only: on a tie the earlier block (the lower index) stays
        take = (top > best_value) | ((best_index == V) & (first < V))
        best_index = tl.where(take, first, best_index)
        best_value = tl.where(take, top, best_value)
    publish_winner(best_value, best_index, value_ptr, index_ptr, counter_ptr, out_ptr, V,
                   PROGRAMS, PROGRAMS_PAD, table_ptr, row_ptr, H, H_PAD, host_ptr,
                   HOST)  # fmt: skip


@triton.jit
def publish_winner(best_value, best_index, value_ptr, index_ptr, counter_ptr, out_ptr, V,
                   PROGRAMS: tl.constexpr, PROGRAMS_PAD: tl.constexpr, table_ptr, row_ptr,
                   H: tl.constexpr, H_PAD: tl.constexpr, host_ptr, HOST: tl.constexpr):  # fmt: skip
    """Each program's (largest value, its first index; V if none) in, the launch's winner out:
    the program that draws the last ticket reduces the pairs in program order (the first index
    of the largest value), writes it to `out` (and pinned host memory with HOST, and the id's
    row of the H-wide table to `row_ptr` when H > 0) and zeroes the counter. Returns whether
    this program was the last (unembedding_screen.py's select shares it)."""
    pid = tl.program_id(0)
    tl.store(value_ptr + pid, best_value)
    tl.store(index_ptr + pid, best_index)
    tl.debug_barrier()  # every thread's stores are issued before the ticket
    ticket = tl.atomic_add(counter_ptr, 1, sem="acq_rel", scope="gpu")
    last = ticket == PROGRAMS - 1
    if last:  # the pairs in program order
        slots = tl.arange(0, PROGRAMS_PAD)
        values = tl.load(value_ptr + slots, mask=slots < PROGRAMS, other=float("-inf"),
                         cache_modifier=".cg")  # fmt: skip
        indices = tl.load(index_ptr + slots, mask=slots < PROGRAMS, other=V, cache_modifier=".cg")
        top = tl.max(values, axis=0)
        best = tl.min(tl.where(values == top, indices, V), axis=0)
        tl.store(out_ptr, best.to(tl.int64))
        if HOST:  # pinned host memory, written over the bus: no copy to queue after us
            tl.store(host_ptr, best.to(tl.int64))
        if H > 0:  # the chosen id's embedded row: the next decode step's input
            cols = tl.arange(0, H_PAD)
            row = tl.load(table_ptr + best.to(tl.int64) * H + cols, mask=cols < H)
            tl.store(row_ptr + cols, row, mask=cols < H)
        tl.atomic_xchg(counter_ptr, 0)  # zero again for the next call / graph replay
    return last


def argmax(x: torch.Tensor) -> torch.Tensor:
    """x [V] float32 -> 0-dim int64 index of its largest value (the first one), like
    torch.argmax(x), without a host sync."""
    out = torch.empty((), dtype=torch.int64, device=x.device)
    argmax_into(x, out)
    return out


def argmax_into(
    x: torch.Tensor,
    out: torch.Tensor,
    table: torch.Tensor | None = None,
    row_out: torch.Tensor | None = None,
    host: torch.Tensor | None = None,
) -> None:
    """`argmax` written into `out` (one int64); with `table` [V', H], also table[id] into
    `row_out` ([1, H] or [H], the table's dtype), in the same launch: greedy decoding's sample,
    the id's copy and its embedding gather were three launches. With `host` (one int64 on the
    host) the id goes there too: written by the kernel itself when `host` is pinned (the
    GPU reaches pinned memory directly), else copied after it without blocking."""
    if x.dim() != 1 or x.dtype != torch.float32 or not x.is_contiguous() or x.numel() == 0:
        raise ValueError(f"argmax takes a non-empty contiguous float32 row, got {x.dtype} "
                         f"{tuple(x.shape)}")  # fmt: skip
    outputs, direct = winner_outputs(x.device, out, table, row_out, host)
    n = x.numel()
    programs = triton.cdiv(n, _BLOCK * _STEPS)
    values = torch.empty(programs, dtype=torch.float32, device=x.device)
    indices = torch.empty(programs, dtype=torch.int32, device=x.device)
    _argmax_kernel[(programs,)](
        x, values, indices, arrival_counters(x.device, 0, 1, "argmax"), out, n, PROGRAMS=programs,
        PROGRAMS_PAD=triton.next_power_of_2(programs), BLOCK=_BLOCK, STEPS=_STEPS, num_warps=4,
        **outputs,
    )  # fmt: skip
    if host is not None and not direct:
        host.copy_(out.reshape(host.shape), non_blocking=True)


def winner_outputs(
    device: torch.device,
    out: torch.Tensor,
    table: torch.Tensor | None,
    row_out: torch.Tensor | None,
    host: torch.Tensor | None,
) -> tuple[dict, bool]:
    """The checked outputs of a launch ending in `publish_winner`: its keyword arguments, and
    whether it writes `host` itself (pinned memory, from a GPU; otherwise the caller copies the
    id there after the launch, without blocking)."""
    if out.numel() != 1 or out.dtype != torch.int64:
        raise ValueError(f"argmax writes one int64, got {out.dtype} {tuple(out.shape)}")
    if host is not None and (host.numel() != 1 or host.dtype != torch.int64):
        raise ValueError(f"argmax writes one int64 to the host, got {host.dtype} "
                         f"{tuple(host.shape)}")  # fmt: skip
    outputs: dict = dict(table_ptr=None, row_ptr=None, H=0, H_PAD=1, host_ptr=None, HOST=False)
    if table is not None:
        contiguous = table.is_contiguous() and row_out is not None and row_out.is_contiguous()
        if row_out is None or table.dim() != 2 or not contiguous:
            raise ValueError("argmax_into gathers from a contiguous [V, H] table into row_out")
        if row_out.numel() != table.shape[1] or row_out.dtype != table.dtype:
            raise ValueError(f"row_out {row_out.dtype} {tuple(row_out.shape)} does not hold "
                             f"a row of the {table.dtype} table {tuple(table.shape)}")  # fmt: skip
        hidden = table.shape[1]
        outputs.update(table_ptr=table, row_ptr=row_out, H=hidden,
                       H_PAD=triton.next_power_of_2(hidden))  # fmt: skip
    direct = host is not None and device.type == "cuda" and host.device.type == "cpu"
    direct = direct and host.is_pinned()
    if direct:
        outputs.update(host_ptr=host, HOST=True)
    return outputs, direct
