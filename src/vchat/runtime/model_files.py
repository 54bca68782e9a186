"""A model folder the user points at, checked before the libraries read it: configs parse, weight files are whole.

transformers and safetensors trust what they read: a `config.json` that is not JSON, or a
`model.safetensors` of random bytes (whose first 8 bytes claim a header of exabytes) ends in
MemoryError or "OverflowError: cannot fit 'int'" with no word of which file is broken. These
checks read only the small parts (config files, safetensors headers), so they cost milliseconds
even for gigabytes of weights, and name the damaged file and what to do.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

from vchat.errors import ModelLoadError
from vchat.userfiles import UserFileError, read_bytes, shown

CONFIG_LIMIT = 64 * 1024 * 1024  # config and index files are kilobytes; a sharded index a few MB
HEADER_LIMIT = 100 * 1024 * 1024  # the safetensors library's own cap on a header
# Bytes per element of the dtypes safetensors writes.
_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
}


class DamagedFile(Exception):
    """Why one file cannot be what its name says."""


def _is_config(name: str) -> bool:
    return name.endswith(".json") and ("config" in name or name.endswith(".index.json"))


def check_config(path: Path) -> None:
    """A config or index file: a regular file holding one JSON object."""
    try:
        data = json.loads(read_bytes(path, "file", CONFIG_LIMIT).decode("utf-8"))
    except UserFileError as exc:
        raise DamagedFile(str(exc).removeprefix(f"file {shown(path)}").lstrip(": ")) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedFile(f"not valid JSON: {str(exc).splitlines()[0][:120]}") from None
    if not isinstance(data, dict):
        raise DamagedFile("not a JSON object")


def check_safetensors(path: Path) -> None:
    """A safetensors file: its header parses and every tensor lies inside the file with the size its shape needs."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise DamagedFile(f"{size} bytes, too short for a header")
            (length,) = struct.unpack("<Q", head)
            if length > HEADER_LIMIT or 8 + length > size:
                raise DamagedFile(
                    f"its header claims {length:,} bytes in a {size:,}-byte file (cut short, or not safetensors)"
                )
            header = json.loads(fh.read(length).decode("utf-8"))
    except OSError as exc:
        raise DamagedFile(f"cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError):
        raise DamagedFile("its header is not valid JSON (damaged, or not safetensors)") from None
    if not isinstance(header, dict):
        raise DamagedFile("its header is not a JSON object")
    data_size = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        problem = _tensor_problem(entry, data_size)
        if problem:
            raise DamagedFile(f"tensor {name[:80]!r} {problem}")


def _tensor_problem(entry: object, data_size: int) -> str | None:
    if not isinstance(entry, dict):
        return "has no description"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        return "has a bad shape"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(n, int) for n in offsets)):
        return "has bad offsets"
    start, end = offsets
    if not 0 <= start <= end <= data_size:
        return f"lies past the end of the file (bytes {start:,}-{end:,} of {data_size:,}): the file is cut short"
    width = _DTYPE_BYTES.get(dtype) if isinstance(dtype, str) else None
    if width is not None and end - start != math.prod(shape) * width:
        return f"has {end - start:,} bytes for a {dtype} shape {shape}"
    return None


def check_folder(folder: Path, key: str, setting: str) -> None:
    """Check a local model folder's config and weight files; a damaged one is a one-line ModelLoadError."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError:
        return  # a missing or unreadable folder is reported by the files check before this one
    for path in files:
        try:
            if _is_config(path.name):
                check_config(path)
            elif path.suffix == ".safetensors":
                check_safetensors(path)
        except DamagedFile as exc:
            raise ModelLoadError(
                f"model {key}: {shown(path)} is damaged ({exc}); "
                f"download the model again, or point [models] {setting} at a whole copy"
            ) from None
