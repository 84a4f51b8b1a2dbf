"""Greedy decoding's unembedding: the full bf16 GEMV + argmax against the int8 screen (H100).

    python benchmarks/unembedding_screen.py [--sweep]

A random gpt-oss unembedding (201,088 x 2,880 bf16, N(0, 0.02)), a final norm scale near 1 and
random last-layer rows; each way (final norm included) runs inside a CUDA graph (20 replays a
round, 5 rounds, the median round), with the weight and the codes far larger than L2. Prints
JSON lines: the microseconds a token of each way, how many rows passed the screen, and whether
the ids agree on 64 rows (and on rows with planted ties and a NaN). `--sweep` also times the
screen's other block shapes.
"""

from __future__ import annotations

import argparse
import json

import torch
from graph_timing import graph_time

from gptoss_chat.kernels import unembedding_screen as screen_module
from gptoss_chat.kernels.argmax import argmax_into
from gptoss_chat.kernels.gemv import unembedding
from gptoss_chat.kernels.rms_norm import rms_norm
from gptoss_chat.kernels.unembedding_screen import build_screen, screened_argmax_into

V, K = 201088, 2880


def emit(name: str, value: object, **extra: object) -> None:
    print(json.dumps({"figure": name, "value": value, **extra}), flush=True)


def candidates(screen) -> int:
    """Rows whose upper end reaches the largest lower end for the last row screened (recomputed
    in float64 from the kernels' x codes: a count for the report, not the kernels' decision)."""
    k = screen.codes.shape[1]
    words = screen.words.view(torch.int8).double().view(-1, k)  # x^ (and its fine codes)
    coded = words[0] * 254 + words[1] if screen_module._FINE_X else words[0]
    x_hat = coded.view(-1, 32) * screen.steps.double()[:, None]
    x = screen.normed.double()[0]
    rest = (x - x_hat.view(-1)).norm()
    proxy = (screen.codes.double() @ x_hat.view(-1)) * screen.scale.double()
    slack = screen.bound_x.double() * x.norm() + screen.bound_r.double() * rest
    return int(((proxy + slack) >= (proxy - slack).max()).sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    weight = (torch.randn(V, K, generator=gen, device=dev) * 0.02).to(torch.bfloat16)
    torch.cuda.synchronize()
    import time

    started = time.perf_counter()
    screen = build_screen(weight)
    torch.cuda.synchronize()
    emit("build_seconds", round(time.perf_counter() - started, 2), bytes=screen.nbytes)

    x = torch.randn(1, K, generator=gen, device=dev).to(torch.bfloat16)
    g = 1 + 0.1 * torch.randn(K, generator=gen, device=dev)
    eps = 1e-5

    def full(w, row, out):
        argmax_into(unembedding(rms_norm(row, g, eps), w)[0], out)

    def screened(w, scr, row, out):
        screened_argmax_into(row, g, eps, w, scr, out)

    token = torch.zeros(1, dtype=torch.int64, device=dev)
    token2 = torch.zeros(1, dtype=torch.int64, device=dev)

    # agreement: random rows, then planted ties (a copy of the winning row at a lower index and at
    # a higher one) and a NaN
    agree = 0
    for _ in range(64):
        x.copy_(torch.randn(1, K, generator=gen, device=dev))
        full(weight, x, token)
        screened(weight, screen, x, token2)
        agree += int(token.item() == token2.item())
    emit("agree_random_rows", agree, of=64, candidates=candidates(screen))
    winner = int(token.item())
    tied = weight.clone()
    for row in (winner // 2, min(V - 1, winner + 1000)):
        tied[row] = tied[winner]
    tied_screen = build_screen(tied)
    full(tied, x, token)
    screened(tied, tied_screen, x, token2)
    emit("agree_planted_tie", token.item() == token2.item(), full=token.item(),
         screened=token2.item())  # fmt: skip
    nan_x = x.clone()
    nan_x[0, 7] = float("nan")
    full(weight, nan_x, token)
    screened(weight, screen, nan_x, token2)
    emit("agree_nan", token.item() == token2.item(), full=token.item(), screened=token2.item())
    del tied, tied_screen

    full_us = graph_time(lambda: full(weight, x, token))
    full_tb_s = round(weight.numel() * 2 / full_us / 1e6, 3)
    emit("full_norm_unembedding_argmax_us", round(full_us, 2), tb_s=full_tb_s)
    for fine in (True, False):
        screen_module._FINE_X = fine
        screened_us = graph_time(lambda: screened(weight, screen, x, token2))
        alone = graph_time(lambda: screen_module._launch_screen(screen))
        screen.lower_max.fill_(float("-inf"))
        screened(weight, screen, x, token2)
        emit("screened_us", round(screened_us, 2), saved_us=round(full_us - screened_us, 2),
             screen_alone_us=round(alone, 2), fine_x=fine, candidates=candidates(screen),
             codes_tb_s=round(screen.codes.numel() / alone / 1e6, 3))  # fmt: skip
    screen_module._FINE_X = True
    if args.sweep:
        chunk = screen_module._SELECT_CHUNK
        for rows in (64, 128, 512):
            screen_module._SELECT_CHUNK = rows
            t = graph_time(lambda: screened(weight, screen, x, token2))
            emit("screened_us_select_chunk", round(t, 2), rows=rows)
        screen_module._SELECT_CHUNK = chunk
        names = ("_SCREEN_BLOCK_N", "_SCREEN_GROUPS", "_SCREEN_WARPS", "_SCREEN_STAGES")
        base = tuple(getattr(screen_module, n) for n in names)
        shapes = [(8, 64, 4, 3), (4, 64, 4, 3), (4, 64, 2, 3), (4, 32, 4, 3), (4, 32, 2, 3)]
        for shape in shapes:
            for n, v in zip(names, shape, strict=True):
                setattr(screen_module, n, v)
            t = graph_time(lambda: screened(weight, screen, x, token2))
            emit("screened_us_shape", round(t, 2), shape=shape)
        for n, v in zip(names, base, strict=True):
            setattr(screen_module, n, v)


if __name__ == "__main__":
    main()
