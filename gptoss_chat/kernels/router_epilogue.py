"""The MoE router as the last act of the out-projection GEMV (`gemv.linear_residual_route`).

At decode the attention block ends with x += W_o a + b_o (one GEMV launch of 360 programs) and
the MoE half starts with RMSNorm + router logits + the normed row in fixed point
(`router.norm_router_logits`, a launch of E programs). The second launch only needs the whole
new x row, so it becomes an epilogue of the first: each GEMV program, once its rows of x are
stored, takes an arrival ticket, and the last E arrivals wait for the rest and then do the
router's work, one logit each. That removes a launch and its boundary (the drain of one grid,
the ramp-up of the next) per layer.

Results are bit for bit `norm_router_logits`'s: the same float32 sum over the padded row for
the rms, the same bf16 rounding of the normed row, the same [1, BLOCK_H] products summed along
the row (the same layouts on sm_90, checked by benchmarks/compile_out_router.py), the same bias
add and rounding, and the same per-group fixed-point quantisation (`quantize_fixed`), here
split among the E programs (a group's result does not depend on which program computes it).
"""

from __future__ import annotations

import triton
import triton.language as tl

from gptoss_chat.kernels.mxfp4_int8 import store_normed_groups


@triton.jit
def route_after_out_proj(
    x_ptr,  # [H] bf16: the new residual row, written by all the GEMV's programs
    w_ptr,  # [E, H] bf16 gate
    b_ptr,  # [E] bf16
    logits_ptr,  # [E] float32 (bf16-rounded values)
    norm_ptr,  # [H] float32 RMSNorm scale of the MoE half
    normed_ptr,  # [H] bf16 normed row
    xq_ptr,  # [2H] int8: the normed row in fixed point (`mxfp4_int8.store_fixed`'s layout)
    xs_ptr,  # [H/32] float32: its steps
    counter_ptr,  # int32 [2], zero at entry and at exit: arrivals, routers done
    eps,
    H: tl.constexpr,
    H_PAD: tl.constexpr,
    E: tl.constexpr,
    BLOCK_H: tl.constexpr,
    SHARE: tl.constexpr,  # groups of 32 each router normalises and quantises (>= H/32/E)
    SPIN: tl.constexpr,
):
    """Called by every program of the GEMV's grid after it stored its rows of x.

    Why waiting is safe (SPIN, the GPU): a program waits only if fewer than E programs arrived
    after it, so every program it waits for is running or not yet resident, and none of those
    waits on anything before taking its ticket. A resident program that does not wait always
    finishes and frees its slot, so a stall would need every slot of the GPU held by a waiting
    program while one of ours has none: more than E (128 at most) programs of 4 warps fit on
    any GPU that runs this (an H100 holds over a thousand). With programmatic dependent launch
    the next kernel's programs may take slots early, but only once every program of this grid
    has started (each calls `let_next_kernel_start`), so none of ours is left behind them. The
    launcher makes the grid at least E programs, so there are always E arrivals to do the work.

    Memory order: every thread's stores of x are issued before the barrier; the ticket is an
    acq_rel atomic at GPU scope (thread 0, after the barrier: the release covers the whole
    program's stores), the wait an acquire load, and x is read back with `.cg` loads (L2; L1
    is not coherent across SMs). The counters are reset by the last router to finish waiting
    (counted on the second counter), when no program reads the first one any more, so the next
    call (the next CUDA-graph replay) finds both at zero.

    Without SPIN (Triton's interpreter runs programs one after another, so a waiting program
    would wait forever) the last program to arrive does all E routers' work in turn, with the
    same code."""
    tl.debug_barrier()  # every thread's stores of x are issued before the ticket
    ticket = tl.atomic_add(counter_ptr, 1, sem="acq_rel", scope="gpu")
    n_programs = tl.num_programs(0)
    first_router = n_programs - E
    if SPIN:
        if ticket >= first_router:
            expert = ticket - first_router
            w_first = _gate_tile(w_ptr, expert, 0, H, BLOCK_H)  # independent of x: before waiting
            arrived = ticket + 1
            while arrived < n_programs:
                arrived = tl.atomic_add(counter_ptr, 0, sem="acquire", scope="gpu")
            _router_share(x_ptr, w_ptr, b_ptr, logits_ptr, norm_ptr, normed_ptr, xq_ptr, xs_ptr,
                          eps, expert, w_first, H, H_PAD, BLOCK_H, SHARE)  # fmt: skip
            done = tl.atomic_add(counter_ptr + 1, 1, sem="acq_rel", scope="gpu")
            if done == E - 1:  # every router has left its wait: nobody reads the counters now
                tl.atomic_xchg(counter_ptr, 0, sem="relaxed", scope="gpu")
                tl.atomic_xchg(counter_ptr + 1, 0, sem="relaxed", scope="gpu")
    else:
        if ticket == n_programs - 1:
            for expert in range(E):
                w_first = _gate_tile(w_ptr, expert, 0, H, BLOCK_H)
                _router_share(x_ptr, w_ptr, b_ptr, logits_ptr, norm_ptr, normed_ptr, xq_ptr,
                              xs_ptr, eps, expert, w_first, H, H_PAD, BLOCK_H, SHARE)  # fmt: skip
            tl.atomic_xchg(counter_ptr, 0)


@triton.jit
def _gate_tile(w_ptr, expert, h0, H: tl.constexpr, BLOCK_H: tl.constexpr):
    """[1, BLOCK_H] of gate row `expert` from column h0 (as `_router_logits_kernel` loads it)."""
    experts = expert + tl.arange(0, 1)
    hs = h0 + tl.arange(0, BLOCK_H)
    return tl.load(w_ptr + experts[:, None] * H + hs[None, :], mask=(hs < H)[None, :], other=0.0)


@triton.jit
def _router_share(x_ptr, w_ptr, b_ptr, logits_ptr, norm_ptr, normed_ptr, xq_ptr, xs_ptr, eps,
                  expert, w_first, H: tl.constexpr, H_PAD: tl.constexpr, BLOCK_H: tl.constexpr,
                  SHARE: tl.constexpr):  # fmt: skip
    """One router's work: logit `expert` of rms_norm(x) (`w_first`: the gate row's first tile),
    and groups expert*SHARE .. +SHARE-1 of the normed row, in bf16 and in fixed point."""
    all_h = tl.arange(0, H_PAD)  # the rms as `_router_logits_kernel` finds it
    row = tl.load(x_ptr + all_h, mask=all_h < H, other=0.0, cache_modifier=".cg").to(tl.float32)
    inv_rms = tl.rsqrt(tl.sum(row * row, axis=0) / H + eps)
    cols = tl.arange(0, BLOCK_H)
    x = tl.load(x_ptr + cols, mask=cols < H, other=0.0, cache_modifier=".cg")
    scale = tl.load(norm_ptr + cols, mask=cols < H, other=0.0)
    x = (x.to(tl.float32) * inv_rms * scale).to(x_ptr.dtype.element_ty)
    acc = w_first.to(tl.float32) * x.to(tl.float32)[None, :]  # = 0 + the first products
    for h0 in range(BLOCK_H, H, BLOCK_H):
        hs = h0 + cols
        h_ok = hs < H
        w = _gate_tile(w_ptr, expert, h0, H, BLOCK_H)
        x = tl.load(x_ptr + hs, mask=h_ok, other=0.0, cache_modifier=".cg")
        scale = tl.load(norm_ptr + hs, mask=h_ok, other=0.0)
        x = (x.to(tl.float32) * inv_rms * scale).to(x_ptr.dtype.element_ty)
        acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
    experts = expert + tl.arange(0, 1)
    logits = tl.sum(acc, axis=1) + tl.load(b_ptr + experts).to(tl.float32)
    tl.store(logits_ptr + experts, logits.to(tl.bfloat16).to(tl.float32))
    # this router's groups of the normed row (x written by this launch's other programs: .cg)
    store_normed_groups(x_ptr, norm_ptr, inv_rms, normed_ptr, xq_ptr, xs_ptr, expert * SHARE,
                        SHARE, SHARE, H, ".cg")  # fmt: skip
