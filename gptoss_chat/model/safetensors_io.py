"""Read safetensors files through a memory map, one tensor at a time.

`read_header` parses the JSON header (and checks the file holds every byte it announces) without
touching the data. `MappedFile.tensor` returns a zero-copy view of one tensor in a private
(copy-on-write) mapping: on a CPU engine the weights simply stay file-backed pages, never a
second copy; on a GPU engine each view is copied to the device and `release` hands its pages
back to the kernel, so host memory stays near one tensor.
"""

from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "I32": torch.int32,
    "I64": torch.int64,
}


class SafetensorsError(ValueError):
    """The file is not a complete safetensors file."""


@dataclass(frozen=True)
class TensorEntry:
    file: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int
    """Absolute byte offset of the data in the file."""
    nbytes: int


def read_header(path: Path) -> dict[str, TensorEntry]:
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                raise SafetensorsError(f"{path} is truncated (its header runs past the file end)")
            header = json.loads(f.read(header_len))
        data_start = 8 + header_len
        entries: dict[str, TensorEntry] = {}
        end = 0
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            begin, stop = (int(x) for x in meta["data_offsets"])
            shape = tuple(int(d) for d in meta["shape"])
            end = max(end, stop)
            entries[name] = TensorEntry(path, str(meta["dtype"]), shape, data_start + begin,
                                        stop - begin)  # fmt: skip
    except (struct.error, ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        if isinstance(exc, SafetensorsError):
            raise
        raise SafetensorsError(f"{path} is not a safetensors file: {exc}") from None
    if data_start + end > size:
        raise SafetensorsError(
            f"{path} is truncated: it holds {size} bytes, its tensors need {data_start + end}"
            " (an interrupted download?)"
        )
    return entries


class MappedFile:
    def __init__(self, path: Path) -> None:
        with path.open("rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)

    def tensor(self, entry: TensorEntry) -> torch.Tensor:
        """Zero-copy view of the entry's bytes as its dtype and shape."""
        dtype = DTYPES[entry.dtype]
        count = entry.nbytes // dtype.itemsize
        if count == 0:
            return torch.empty(entry.shape, dtype=dtype)
        flat = torch.frombuffer(self._map, dtype=dtype, count=count, offset=entry.offset)
        return flat.reshape(entry.shape)

    def release(self, entry: TensorEntry) -> None:
        """Drop the entry's pages from this process (after they were copied elsewhere)."""
        self.release_range(entry.offset, entry.nbytes)

    def release_range(self, offset: int, nbytes: int) -> None:
        """Drop the pages holding bytes offset .. offset+nbytes (whole pages: a neighbour's
        bytes on a shared page are simply read from the file again when touched)."""
        page = mmap.PAGESIZE
        first = offset // page * page
        last = -(-(offset + nbytes) // page) * page
        self._map.madvise(mmap.MADV_DONTNEED, first, min(last, len(self._map)) - first)
