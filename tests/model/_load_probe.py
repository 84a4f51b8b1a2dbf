"""Load a checkpoint in a fresh process and print what it cost, as one JSON line.

    python tests/model/_load_probe.py MODEL_DIR [--device cuda] [--context N] [--forward T]

Peak host memory is the process's maximum resident set (ru_maxrss), printed beside its value
just before loading (torch and imports alone); on CUDA also the peak GPU memory allocated and
reserved by torch's allocator.
With --forward T it then prefills T tokens, so the figures include first use of the weights.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from gptoss_chat.model.generator import load_generator


def rss_now() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--forward", type=int, default=0)
    parser.add_argument("--embedding-on-host", action="store_true")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    result: dict[str, float | int | str] = {"device": args.device, "rss_before": rss_now()}
    started = time.perf_counter()
    generator = load_generator(
        args.model_dir,
        device=args.device,
        context=args.context,
        embedding_on_host=args.embedding_on_host or None,
    )
    if cuda:
        torch.cuda.synchronize()
        result["gpu_peak_after_load"] = torch.cuda.max_memory_allocated()
        result["gpu_reserved_after_load"] = torch.cuda.max_memory_reserved()
    result |= {
        "load_seconds": time.perf_counter() - started,
        "peak_rss_after_load": peak_rss(),
        "rss_after_load": rss_now(),
        "weight_bytes": generator.load_report.weight_bytes,
        "host_weight_bytes": generator.load_report.host_weight_bytes,
        "kv_cache_bytes": generator.load_report.kv_cache_bytes,
    }
    if args.forward:
        ids = torch.randint(0, 200000, (args.forward,), generator=torch.Generator().manual_seed(0))
        started = time.perf_counter()
        with torch.inference_mode():
            generator.model.forward(ids, generator.cache)
        if cuda:
            torch.cuda.synchronize()
            result["gpu_peak_after_forward"] = torch.cuda.max_memory_allocated()
            result["gpu_reserved_after_forward"] = torch.cuda.max_memory_reserved()
        result["forward_seconds"] = time.perf_counter() - started
        result["peak_rss_after_forward"] = peak_rss()
        result["rss_after_forward"] = rss_now()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
