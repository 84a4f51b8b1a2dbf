"""The MoE decode's expert GEMVs as one warp-specialised Gluon launch, against the engine's two.

    PYTHONPATH=$PWD python benchmarks/moe_warp_specialized.py

Needs a Hopper GPU and Triton's Gluon (3.6). Random gpt-oss-20b experts (32 a layer, H = I =
2880) laid out as the GPU engine runs them (`expert_layout`: mlp1 steps of 32 rows x 8 groups,
mlp2 of 16 rows x 16 groups, 4 KB each), 8 layers in turn inside a CUDA graph (each its own
bytes, so L2 holds none), expert ids and weights given.

`ws_moe` is one persistent launch of 360 CTAs, two (token, expert) items of 32 mlp1 rows and
then two of 16 mlp2 rows each. In every CTA a producer warp streams the items' steps through a
4-deep ring of shared-memory stages with TMA, and never waits for anything but a free stage, so
the stream runs on from mlp1's bytes into mlp2's; four consumer warps compute the same integers
as the engine's kernels (`mxfp4_int8`: byte permutes and dp4a against 16-bit fixed-point x), with
mlp1's bias, SwiGLU and quantisation for mlp2 in their epilogue. mlp2's consumers wait per
(token, expert) pair for that pair's 180 mlp1 items (a release/acquire arrival counter, reset by
the last CTA out), then read mlp1's activations. The mode selects:

- `full`: the MoE's expert work (`part` = gate * (W2 SwiGLU(W1 x + b1) + b2) per pair);
- `mlp1_only`: mlp1's items alone;
- `no_wait`: mlp2 does not wait for mlp1 (its result is wrong; what the wait costs).

Beside it, the engine's `_mlp1_kernel` and `_mlp2_kernel` (`moe_decode`, tiled, ids given, no
programmatic dependent launch), each alone. Every variant runs for 4, 8 and 12 pairs (1 to 3
tokens' experts, 17 to 52 MB of codes and scales): the time grows by the streaming of each extra
pair, so the line through the 4- and 12-pair points splits a launch's time into a fixed cost
(ramp-up, tail, launch) and a steady streaming rate (the 8-pair point shows how straight it
is). At 4 pairs the fused result is checked against the
engine's MoE (`moe_decode._launch`, its combining launch after both).

Prints one JSON line per variant and size (median of three timings, microseconds per MoE and
TB/s), then one per variant with the fitted fixed cost and steady rate.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, mbarrier, tma

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gptoss_chat.kernels import moe_decode  # noqa: E402
from gptoss_chat.kernels.expert_layout import (  # noqa: E402
    MLP1_TILE,
    MLP2_TILE,
    TiledExpertWeights,
    tile_experts,
)
from gptoss_chat.kernels.mxfp4_int8 import _DECODE_DOT, decode_table  # noqa: E402
from tests.kernels.helpers import random_experts  # noqa: E402

E, H, INTER, LAYERS = 32, 2880, 2880, 8
BLOCKS = 180  # row blocks of each expert, in mlp1 (5760 / 32) and in mlp2 (2880 / 16)
ITEMS, STAGES, MAXNREG = 2, 4, 80  # items a CTA and phase; ring depth; registers a thread
MODES = {"full": 0, "mlp1_only": 1, "no_wait": 2}
COUNTERS = 64  # arrival counters (one per pair), then the CTAs-done counter
SHARE = {"engine_mlp1": 2 / 3, "engine_mlp2": 1 / 3, "ws_moe_mlp1_only": 2 / 3}
"""The part of a pair's bytes a variant reads (the rest read all)."""


@gluon.jit
def _word_dot(words, hi_a, hi_b, lo_a, lo_b, t0, t1, t2, t3):
    """`mxfp4_int8.fp4_word_dot_asm`: 8 fp4 codes . fixed-point x, as int32."""
    return gl.inline_asm_elementwise(_DECODE_DOT, "=r,r,r,r,r,r,r,r,r,r",
                                     [words, hi_a, hi_b, lo_a, lo_b, t0, t1, t2, t3],
                                     dtype=gl.int32, is_pure=True, pack=1)  # fmt: skip


@gluon.jit
def _half_scale(s):
    """`mxfp4_int8.e8m0_half_scale`."""
    return (gl.maximum(s.to(gl.int32) - 1, 0) << 23).to(gl.float32, bitcast=True)


@gluon.jit
def _round(v):
    """`mxfp4_int8._round`: half away from zero."""
    return gl.where(v >= 0, gl.floor(v + 0.5), -gl.floor(-v + 0.5))


@gluon.jit
def _copy(desc, row, bar, buf):
    """TMA: the box of `desc` at [row, 0] into `buf`'s bytes, seen as that box."""
    view = buf._reinterpret(desc.dtype, desc.block_type.shape, desc.layout)
    tma.async_copy_global_to_shared(desc, [row, 0], bar, view)


@gluon.jit
def _producer(d1, d1t, ds1, dx, d2, d2t, ds2, ids_ptr, ring, sring, xbuf, full, empty, xbar,
              ITEMS: gl.constexpr, S: gl.constexpr, K_SEL: gl.constexpr,
              MODE: gl.constexpr):  # fmt: skip
    """One warp: x once, then every stage of the CTA's items, mlp1's then mlp2's. A block's
    codes and scales are 45 rows of each descriptor's view; a tail stage is a zero-filled box."""
    pid = gl.program_id(0)
    mbarrier.expect(xbar, dx.block_type.nbytes)
    tma.async_copy_global_to_shared(dx, [(pid * ITEMS // 180) // K_SEL * 45, 0], xbar, xbuf)
    it = 0
    PHASES: gl.constexpr = 1 if MODE == 1 else 2
    for phase in gl.static_range(PHASES):
        for i in range(ITEMS):
            item = pid * ITEMS + i
            blk = gl.load(ids_ptr + item // 180) * 180 + item % 180  # among all experts' blocks
            N_STEPS: gl.constexpr = 11 if phase == 0 else 5
            for j in range(N_STEPS + 1):
                s = it % S
                mbarrier.wait(empty.index(s), ((it // S) & 1) ^ 1)
                stage, bar = ring.index(s), full.index(s)
                if j < N_STEPS:
                    mbarrier.expect(bar, 4096 + 256)
                    if phase == 0:
                        _copy(d1, blk * 45 + 4 * j, bar, stage)
                        _copy(ds1, blk * 45 + 4 * j, bar, sring.index(s))
                    else:
                        _copy(d2, blk * 45 + 8 * j, bar, stage)
                        _copy(ds2, blk * 45 + 8 * j, bar, sring.index(s))
                else:  # the tail: mlp1's 2 groups ([32][8 words] read as [32][32], zero
                    # filled), mlp2's 10 ([16][40] as [16][64])
                    mbarrier.expect(bar, 4096)
                    if phase == 0:
                        _copy(d1t, blk * 1440 + 1408, bar, stage)
                    else:
                        _copy(d2t, blk * 144 + 128, bar, stage)
                it += 1


@gluon.jit
def _consumer(ring, sring, xbuf, full, empty, xbar, xd, hbuf, stbuf, xs_ptr, ids_ptr, gate_ptr,
              s1_ptr, s2_ptr, bias1_ptr, bias2_ptr, aq_ptr, as_ptr, part_ptr, cnt_ptr,
              table_ptr, limit, ITEMS: gl.constexpr, S: gl.constexpr, K_SEL: gl.constexpr,
              N_CTAS: gl.constexpr, MODE: gl.constexpr):  # fmt: skip
    """Four warps. mlp1 steps as [32 rows, 8 groups, 4 words] (a thread: one group of rows r
    and r + 16), mlp2 steps as [16 rows, 16 groups, 2 halves, 2 words] (halves: mlp2's x has a
    step per 16 values). x lives in shared memory part-major (hi_a, hi_b, lo_a, lo_b)."""
    L3: gl.constexpr = gl.BlockedLayout([1, 1, 4], [4, 8, 1], [4, 1, 1], [2, 1, 0])
    LS: gl.constexpr = gl.SliceLayout(2, L3)  # [32, 8]
    LX: gl.constexpr = gl.SliceLayout(0, L3)  # [8, 4]
    LG: gl.constexpr = gl.SliceLayout(0, LS)  # [8]
    LR: gl.constexpr = gl.SliceLayout(1, LS)  # [32]
    L4: gl.constexpr = gl.BlockedLayout([1, 1, 2, 2], [2, 16, 1, 1], [4, 1, 1, 1], [3, 2, 1, 0])
    L4H: gl.constexpr = gl.SliceLayout(3, L4)  # [16, 16, 2]
    L4S: gl.constexpr = gl.SliceLayout(2, L4H)  # [16, 16]
    L4X: gl.constexpr = gl.SliceLayout(0, L4)  # [16, 2, 2]
    L4XS: gl.constexpr = gl.SliceLayout(0, L4H)  # [16, 2]
    L4R: gl.constexpr = gl.SliceLayout(1, L4S)  # [16]
    PAIR: gl.constexpr = gl.BlockedLayout([1, 2], [32, 1], [4, 1], [1, 0])  # glu, lin in-thread
    XL: gl.constexpr = gl.BlockedLayout([1, 1, 1, 4], [1, 8, 4, 1], [4, 1, 1, 1], [3, 2, 1, 0])
    XL2: gl.constexpr = gl.BlockedLayout([1, 1, 1, 4], [1, 16, 2, 1], [4, 1, 1, 1], [3, 2, 1, 0])
    SL: gl.constexpr = gl.BlockedLayout([1, 1, 2], [2, 16, 1], [4, 1, 1], [2, 1, 0])
    plain2: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
    plain3: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [2, 1, 0])
    plain4: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [3, 2, 1, 0])
    pid = gl.program_id(0)
    token = (pid * ITEMS // 180) // K_SEL
    z3 = gl.full([32, 8, 4], 0, gl.int32, L3)
    t0 = z3 + gl.load(table_ptr)
    t1 = z3 + gl.load(table_ptr + 1)
    t2 = z3 + gl.load(table_ptr + 2)
    t3 = z3 + gl.load(table_ptr + 3)
    # x: [360 code words][4 parts] as TMA brought it -> [4 parts x 16 steps][8 groups][4 words]
    mbarrier.wait(xbar, 0)
    xall = xbuf._reinterpret(gl.int32, [16, 8, 4, 4], plain4).load(XL)
    xd._reinterpret(gl.int32, [4, 16, 8, 4], plain4).permute([1, 2, 3, 0]).store(xall)
    gl.thread_barrier()
    it = 0
    g8 = gl.arange(0, 8, layout=LG)
    rows32 = gl.arange(0, 32, layout=LR)
    for i in range(ITEMS):
        item = pid * ITEMS + i
        pair = item // 180
        blk = item % 180
        e = gl.load(ids_ptr + pair)
        acc = gl.zeros([32, 8], gl.float32, LS)
        for j in range(12):  # 11 steps, then the tail (groups 88, 89; its scales from memory)
            s = it % S
            xstep = gl.load(xs_ptr + token * 90 + j * 8 + g8, mask=j * 8 + g8 < 90, other=0.0)
            tail_scales = s1_ptr + (e * 5760 + blk * 32) * 90 + 2816  # tiled: after 88 x 32
            tsc = gl.load(tail_scales + rows32[:, None] * 2 + g8[None, :],
                          mask=(g8[None, :] < 2) & (j == 11), other=0)  # fmt: skip
            mbarrier.wait(full.index(s), (it // S) & 1)
            codes = ring.index(s)._reinterpret(gl.int32, [32, 8, 4], plain3).load(L3)
            sc = sring.index(s)._reinterpret(gl.uint8, [32, 8], plain2).load(LS)
            sc = gl.where(j < 11, sc, tsc)
            fence_async_shared()
            mbarrier.arrive(empty.index(s), count=1)
            hi_a = xd.index(j).load(LX)[None, :, :] + z3
            hi_b = xd.index(16 + j).load(LX)[None, :, :] + z3
            lo_a = xd.index(32 + j).load(LX)[None, :, :] + z3
            lo_b = xd.index(48 + j).load(LX)[None, :, :] + z3
            sums = _word_dot(codes, hi_a, hi_b, lo_a, lo_b, t0, t1, t2, t3)
            acc += gl.sum(sums, axis=2).to(gl.float32) * (_half_scale(sc) * xstep[None, :])
            it += 1
        h = gl.sum(acc, axis=1) + gl.load(bias1_ptr + e * 5760 + blk * 32 + rows32).to(gl.float32)
        hbuf.store(h)
        gl.thread_barrier()
        glu, lin = gl.split(hbuf._reinterpret(gl.float32, [16, 2], plain2).load(PAIR))
        gl.thread_barrier()
        glu = gl.minimum(glu, limit)
        lin = gl.minimum(gl.maximum(lin, -limit), limit)
        act = glu / (1.0 + gl.exp(-1.702 * glu)) * (lin + 1.0)
        # mlp2's input: one fixed-point group of 16 (`mxfp4_int8.quantize_fixed`)
        amax = gl.max(gl.abs(act), axis=0)
        unit = gl.where(amax > 0, amax / 127.0, 1.0)
        hi = _round(act / unit)
        lo = _round((act - hi * unit) * (254.0 / unit))
        k = blk * 16 + gl.arange(0, 16, layout=gl.SliceLayout(1, PAIR))
        at = aq_ptr + pair * 5760 + 16 * (k // 8) + k % 8  # `fixed_x_offsets`
        gl.store(at, hi.to(gl.int8))
        gl.store(at + 8, lo.to(gl.int8))
        gl.store(as_ptr + pair * 180 + blk, unit / 254.0)
    gl.thread_barrier()  # the CTA's items are one pair's (180 % ITEMS == 0): one release
    gl.atomic_add(cnt_ptr + (pid * ITEMS) // 180, ITEMS, sem="release", scope="gpu")
    z4 = gl.full([16, 16, 2, 2], 0, gl.int32, L4)
    u0 = z4 + gl.load(table_ptr)
    u1 = z4 + gl.load(table_ptr + 1)
    u2 = z4 + gl.load(table_ptr + 2)
    u3 = z4 + gl.load(table_ptr + 3)
    rows16 = gl.arange(0, 16, layout=L4R)
    gs16 = gl.arange(0, 16, layout=gl.SliceLayout(0, L4S))
    w8 = gl.arange(0, 8, layout=gl.SliceLayout(1, gl.SliceLayout(2, gl.SliceLayout(3, XL2))))
    w16 = gl.arange(0, 16, layout=gl.SliceLayout(0, gl.SliceLayout(2, gl.SliceLayout(3, XL2))))
    w4 = gl.arange(0, 4, layout=gl.SliceLayout(0, gl.SliceLayout(1, gl.SliceLayout(3, XL2))))
    p4 = gl.arange(0, 4, layout=gl.SliceLayout(0, gl.SliceLayout(1, gl.SliceLayout(2, XL2))))
    word = (w8[:, None, None, None] * 16 + w16[None, :, None, None]) * 4 + w4[None, None, :, None]
    s8 = gl.arange(0, 8, layout=gl.SliceLayout(1, gl.SliceLayout(2, SL)))
    s16 = gl.arange(0, 16, layout=gl.SliceLayout(0, gl.SliceLayout(2, SL)))
    s2 = gl.arange(0, 2, layout=gl.SliceLayout(0, gl.SliceLayout(1, SL)))
    aq32 = aq_ptr.to(gl.pointer_type(gl.int32), bitcast=True)
    ITEMS2: gl.constexpr = 0 if MODE == 1 else ITEMS
    current = -1
    for i in range(ITEMS2):
        item = pid * ITEMS + i
        pair = item // 180
        blk = item % 180
        e = gl.load(ids_ptr + pair)
        gate = gl.load(gate_ptr + pair)
        if pair != current:  # the pair's activations, once mlp1 has written all of them
            if MODE == 0:
                while gl.atomic_add(cnt_ptr + pair, 0, sem="acquire", scope="gpu") < 180:
                    pass
            xv = gl.load(aq32 + pair * 1440 + word * 4 + p4[None, None, None, :],
                         mask=word < 1440, other=0, cache_modifier=".cg")  # fmt: skip
            steps = s8[:, None, None] * 32 + s16[None, :, None] * 2 + s2[None, None, :]
            stv = gl.load(as_ptr + pair * 180 + steps, mask=steps < 180, other=0.0,
                          cache_modifier=".cg")  # fmt: skip
            gl.thread_barrier()
            xd._reinterpret(gl.int32, [4, 8, 16, 4], plain4).permute([1, 2, 3, 0]).store(xv)
            stbuf._reinterpret(gl.float32, [8, 16, 2], plain3).store(stv)
            gl.thread_barrier()
            current = pair
        acc2 = gl.zeros([16, 16], gl.float32, L4S)
        for j in range(6):  # 5 steps, then the tail (groups 80-89)
            s = it % S
            tail_scales = s2_ptr + (e * 2880 + blk * 16) * 90 + 1280  # tiled: after 80 x 16
            tsc = gl.load(tail_scales + rows16[:, None] * 10 + gs16[None, :],
                          mask=(gs16[None, :] < 10) & (j == 5), other=0)  # fmt: skip
            mbarrier.wait(full.index(s), (it // S) & 1)
            codes = ring.index(s)._reinterpret(gl.int32, [16, 16, 2, 2], plain4).load(L4)
            sc = sring.index(s)._reinterpret(gl.uint8, [16, 16], plain2).load(L4S)
            sc = gl.where(j < 5, sc, tsc)
            fence_async_shared()
            mbarrier.arrive(empty.index(s), count=1)
            xq4 = xd._reinterpret(gl.int32, [32, 16, 2, 2], plain3)
            hi_a = xq4.index(j).load(L4X)[None, :, :, :] + z4
            hi_b = xq4.index(8 + j).load(L4X)[None, :, :, :] + z4
            lo_a = xq4.index(16 + j).load(L4X)[None, :, :, :] + z4
            lo_b = xq4.index(24 + j).load(L4X)[None, :, :, :] + z4
            sums = _word_dot(codes, hi_a, hi_b, lo_a, lo_b, u0, u1, u2, u3)
            halves = gl.sum(sums, axis=3).to(gl.float32) * stbuf.index(j).load(L4XS)[None, :, :]
            acc2 += gl.sum(halves, axis=2) * _half_scale(sc)
            it += 1
        y = gl.sum(acc2, axis=1) + gl.load(bias2_ptr + e * 2880 + blk * 16 + rows16).to(gl.float32)
        gl.store(part_ptr + pair * 2880 + blk * 16 + rows16, gate * y)
    gl.thread_barrier()  # the last CTA out leaves the counters at zero for the next launch
    if gl.atomic_add(cnt_ptr + 64, 1, sem="acq_rel", scope="gpu") == N_CTAS - 1:
        for p in range(64):
            gl.store(cnt_ptr + p, 0)
        gl.store(cnt_ptr + 64, 0)


@gluon.jit
def _ws_moe_kernel(d1, d1t, ds1, dx, d2, d2t, ds2, xs_ptr, ids_ptr, gate_ptr, s1_ptr, s2_ptr,
                   bias1_ptr, bias2_ptr, aq_ptr, as_ptr, part_ptr, cnt_ptr, table_ptr, limit,
                   ITEMS: gl.constexpr, S: gl.constexpr, K_SEL: gl.constexpr,
                   N_CTAS: gl.constexpr, MODE: gl.constexpr):  # fmt: skip
    ring = gl.allocate_shared_memory(gl.int32, [S, 4, 256], d1.layout)
    sring = gl.allocate_shared_memory(gl.uint8, [S, 4, 64], ds1.layout)
    xbuf = gl.allocate_shared_memory(gl.int32, [64, 32], dx.layout)
    xd = gl.allocate_shared_memory(gl.int32, [64, 8, 4], gl.SwizzledSharedLayout(1, 1, 1, [1, 0]))
    hbuf = gl.allocate_shared_memory(gl.float32, [32], gl.SwizzledSharedLayout(1, 1, 1, [0]))
    stbuf = gl.allocate_shared_memory(gl.float32, [8, 16, 2],
                                      gl.SwizzledSharedLayout(1, 1, 1, [1, 0]))  # fmt: skip
    full = gl.allocate_shared_memory(gl.int64, [S, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [S, 1], mbarrier.MBarrierLayout())
    xbar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    for s in gl.static_range(S):
        mbarrier.init(full.index(s), count=1)
        mbarrier.init(empty.index(s), count=1)
    mbarrier.init(xbar, count=1)
    gl.warp_specialize([
        (_consumer, (ring, sring, xbuf, full, empty, xbar, xd, hbuf, stbuf, xs_ptr, ids_ptr,
                     gate_ptr, s1_ptr, s2_ptr, bias1_ptr, bias2_ptr, aq_ptr, as_ptr, part_ptr,
                     cnt_ptr, table_ptr, limit, ITEMS, S, K_SEL, N_CTAS, MODE)),
        (_producer, (d1, d1t, ds1, dx, d2, d2t, ds2, ids_ptr, ring, sring, xbuf, full, empty,
                     xbar, ITEMS, S, K_SEL, MODE)),
    ], [1], [40])  # fmt: skip


def _descriptors(w1, s1, w2, s2, xq) -> tuple:
    """TMA descriptors over tiled mlp1 / mlp2 codes and scales and the fixed-point x (int8,
    with room for a 64 x 32-word box after the last token's 45 rows)."""
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    def desc(t, width, box, bits):
        layout = gl.NVMMASharedLayout(swizzle_byte_width=0, element_bitwidth=bits, rank=2)
        return TensorDescriptor.from_tensor(t.view(-1, width), box, layout)

    c1, c2 = w1.view(-1).view(torch.int32), w2.view(-1).view(torch.int32)
    x = xq.view(-1).view(torch.int32)
    return (desc(c1, 256, [4, 256], 32), desc(c1, 8, [32, 32], 32), desc(s1, 64, [4, 64], 8),
            desc(x, 32, [64, 32], 32), desc(c2, 128, [8, 128], 32), desc(c2, 40, [16, 64], 32),
            desc(s2, 32, [8, 32], 8))  # fmt: skip


def _layers() -> list[tuple[torch.Tensor, ...]]:
    """LAYERS layers of random experts (tests' `random_experts`), tiled as the engine's GPU
    table tiles them: (w1, s1, b1, w2, s2, b2)."""
    out = []
    for layer in range(LAYERS):
        e = tile_experts(random_experts(E, H, INTER, torch.device("cuda"), seed=layer))
        if not isinstance(e, TiledExpertWeights):
            sys.exit("the experts did not tile (GPTOSS_TRITON_AUTOTUNE set?)")
        out.append((e.mlp1_blocks, e.mlp1_scales, e.mlp1_bias, e.mlp2_blocks, e.mlp2_scales,
                    e.mlp2_bias))  # fmt: skip
    return out


def _microseconds(launch, rounds: int = 3, replays: int = 50) -> float:
    """Median over `rounds` of the time per layer of a graph of LAYERS `launch(layer)` calls."""
    for layer in range(LAYERS):
        launch(layer)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for layer in range(LAYERS):
            launch(layer)
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(replays):
            graph.replay()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) * 1e3 / (replays * LAYERS))
    return statistics.median(times)


class _Run:
    """Buffers of one size (`pairs` = 4 per token) and the launches that use them."""

    def __init__(self, layers, pairs: int, gen: torch.Generator):
        dev = torch.device("cuda")
        self.layers, self.pairs, tokens = layers, pairs, pairs // 4
        self.ids = torch.randperm(E, generator=torch.Generator().manual_seed(pairs))[:pairs]
        self.ids = self.ids.to(torch.int32).to(dev)
        self.gates = torch.rand(pairs, generator=gen, device=dev)
        self.x = torch.randn(tokens, H, generator=gen, device=dev).bfloat16()
        self.xq = torch.zeros(tokens * 2 * H + 8192, dtype=torch.int8, device=dev)
        self.xs = torch.empty(tokens, H // 32, device=dev)
        moe_decode._quantize_kernel[(tokens,)](self.x, self.xq, self.xs, K=H, G_PAD=128,
                                               num_warps=4)  # fmt: skip
        self.aq = torch.zeros(pairs, 2 * INTER, dtype=torch.int8, device=dev)
        self.as_ = torch.zeros(pairs, INTER // 16, device=dev)
        self.part = torch.zeros(pairs, H, device=dev)
        self.counters = torch.zeros(COUNTERS + 1, dtype=torch.int32, device=dev)
        self.table = decode_table(dev)
        self.descs = [_descriptors(w1, s1, w2, s2, self.xq) for w1, s1, _, w2, s2, _ in layers]

    def fused(self, layer: int, mode: int) -> None:
        _, s1, b1, _, s2, b2 = self.layers[layer]
        n_ctas = self.pairs * BLOCKS // ITEMS
        _ws_moe_kernel[(n_ctas,)](
            *self.descs[layer], self.xs, self.ids, self.gates, s1, s2, b1, b2, self.aq,
            self.as_, self.part, self.counters, self.table, 7.0, ITEMS=ITEMS, S=STAGES,
            K_SEL=4, N_CTAS=n_ctas, MODE=mode, num_warps=4, maxnreg=MAXNREG,
        )  # fmt: skip

    def engine_mlp1(self, layer: int) -> None:
        w1, s1, b1, *_ = self.layers[layer]
        moe_decode._mlp1_kernel[(self.pairs, INTER // 16)](
            self.xq.view(torch.int32), self.xs, self.ids, w1.view(torch.int32), s1, b1, self.aq,
            self.as_, self.table, 7.0, H=H, INTER=INTER, K_SEL=4, BLOCK_G=MLP1_TILE[1],
            USE_ASM=True, PIPE=1, OUT=16, TILED=True, num_warps=4,
        )  # fmt: skip

    def engine_mlp2(self, layer: int) -> None:
        *_, w2, s2, b2 = self.layers[layer]
        moe_decode._mlp2_kernel[(self.pairs, H // MLP2_TILE[0])](
            self.aq.view(torch.int32), self.as_, self.ids, self.gates, w2.view(torch.int32), s2,
            b2, self.part, self.table, H=H, INTER=INTER, BLOCK_N=MLP2_TILE[0],
            BLOCK_G=MLP2_TILE[1], USE_ASM=True, PIPE=1, XG=16, TILED=True, num_warps=4,
        )  # fmt: skip

    def check(self) -> float:
        """Max difference of the fused MoE (+ the engine's combining launch) from the engine's."""
        w1, s1, b1, w2, s2, b2 = self.layers[0]
        ids, gates = self.ids.view(1, -1), self.gates.view(1, -1)
        want = moe_decode._launch(self.x, ids, gates, 4, w1, s1, b1, w2, s2, b2, 7.0, None,
                                  tiled=True).float()  # fmt: skip
        self.fused(0, MODES["full"])
        got = torch.empty_like(self.x)
        moe_decode._combine_kernel[(1, 3)](self.part, got, H=H, K_SEL=4, BLOCK=1024, num_warps=4)
        return (got.float() - want).abs().max().item()


def main() -> None:
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9:
        sys.exit("needs a Hopper (or newer) GPU")
    gen = torch.Generator(device="cuda").manual_seed(0)
    layers = _layers()
    pair_bytes = 3 * H * INTER // 2 * 17 // 16  # one expert's mlp1 + mlp2 codes and scales
    fits: dict[str, list[tuple[int, float]]] = {}
    for pairs in (4, 8, 12):
        run = _Run(layers, pairs, gen)
        if pairs == 4:
            print(json.dumps({"check": "fused vs engine MoE", "max_diff": run.check()}))
        variants = {f"ws_moe_{name}": (lambda layer, m=mode, r=run: r.fused(layer, m))
                    for name, mode in MODES.items()}  # fmt: skip
        variants |= {"engine_mlp1": run.engine_mlp1, "engine_mlp2": run.engine_mlp2}
        for name, launch in variants.items():
            us = _microseconds(launch)
            nbytes = pairs * pair_bytes * SHARE.get(name, 1.0)
            fits.setdefault(name, []).append((pairs, us))
            print(json.dumps({"variant": name, "pairs": pairs, "us": round(us, 2),
                              "tb_per_s": round(nbytes / us / 1e6, 3)}), flush=True)  # fmt: skip
    for name, points in fits.items():
        slope = (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])  # us per pair
        fixed = points[0][1] - slope * points[0][0]
        steady = pair_bytes * SHARE.get(name, 1.0) / slope / 1e6
        print(json.dumps({"variant": name, "fixed_us": round(fixed, 2),
                          "steady_tb_per_s": round(steady, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
