"""Write a PyTorch state dict (.pth, .pt) as a .safetensors file: the one place netspec reads a pickle.

torch.load with weights_only=True unpickles tensors and plain containers only, never a class of the
file's choosing, so reading a .pth here runs no code from it. PyTorch is imported only by this
module, and only when a file is converted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netspec.errors import MissingExtra, Problem, SpecError, size_shown, with_article
from netspec.files import atomic_write
from netspec.safetensors_file import METADATA, write

WRAPPERS = ("state_dict", "model")
"""Keys under which training scripts keep the state dict in a checkpoint (with the epoch, the optimizer, …)."""


def torch_module() -> Any:
    """The torch package, or NS212 saying how to install it."""
    try:
        import torch
    except ImportError:
        # Not 'netspec[torch]': `pip install netspec` fetches an unrelated project of that name from the index.
        message = "netspec convert reads .pth files with PyTorch, which is not installed: pip install torch"
        raise MissingExtra(Problem("NS212", message)) from None
    return torch


def convert(source: Path, out: Path, strip_prefix: str | None = None) -> tuple[int, int]:
    """Write the state dict in `source` to `out` (.safetensors), replacing it at once when complete.

    `strip_prefix` is taken off the keys that start with it ("module." of a model saved inside
    torch.nn.DataParallel), so that they are the module paths a spec's layers are named after.

    Returns:
        How many tensors, and how many bytes of values, were written.

    Raises:
        MissingExtra: torch is not installed (NS212).
        SpecError: `source` is not a state dict of tensors (NS213), naming the first value that is not.
    """
    torch = torch_module()
    loaded = _load(torch, source)
    tensors = _state_dict(torch, loaded, str(source))
    if strip_prefix:
        stripped = {key.removeprefix(strip_prefix): tensor for key, tensor in tensors.items()}
        if len(stripped) < len(tensors):  # "module.fc.weight" and "fc.weight" both: one would be lost
            message = f"holds keys that are the same without {strip_prefix!r}; convert it without --strip-prefix"
            raise _refusal(str(source), message)
        tensors = stripped
    if METADATA in tensors:  # the safetensors format keeps that key for text: readers drop the tensor or fail
        message = (
            f"holds a tensor named {METADATA!r}, a name the .safetensors format keeps for its text metadata; "
            "rename the tensor before saving (it cannot be a module's parameter)"
        )
        raise _refusal(str(source), message)
    arrays = {key: _raw(torch, tensor) for key, tensor in tensors.items()}
    with atomic_write(out) as stream:
        write(stream, arrays)
    return len(arrays), sum(len(data) for _, _, data in arrays.values())


SAFETENSORS_DTYPES = {
    "torch.float64": "F64",
    "torch.float32": "F32",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.int64": "I64",
    "torch.int32": "I32",
    "torch.int16": "I16",
    "torch.int8": "I8",
    "torch.uint8": "U8",
    "torch.bool": "BOOL",
}
"""The safetensors name of each torch dtype a state dict may hold (and this converter writes)."""


def _refusal(file: str, message: str) -> SpecError:
    return SpecError(Problem("NS213", message, file=file))


def _load(torch: Any, source: Path) -> Any:
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError, KeyError…: any bad file
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found is None:  # not a file torch.save wrote, or not whole
            raise _refusal(str(source), _unreadable(source, err)) from None
        raise _refusal(
            str(source),
            f"holds {with_article(found.group(1) + ' object')}, which torch.load(weights_only=True) will not make "
            "(loading it could run code); save only the weights where you trust the file: "
            "torch.save(model.state_dict(), 'weights.pth')",
        ) from None


def _unreadable(source: Path, err: Exception) -> str:
    what = "is empty" if source.stat().st_size == 0 else f"cannot be read by torch.load ({type(err).__name__})"
    return f"{what}; give a file written by torch.save"


def _state_dict(torch: Any, loaded: Any, file: str) -> dict[str, Any]:
    """The state dict in what torch.load gave: itself, or under "state_dict" or "model" in a checkpoint."""
    if not isinstance(loaded, Mapping):
        what = with_article(type(loaded).__name__)
        raise _refusal(file, f"holds {what}, not a state dict (a mapping of names to tensors)")
    where = ""
    for key in WRAPPERS:
        if isinstance(loaded.get(key), Mapping):
            loaded, where = loaded[key], f"its state dict (under {key!r}) "
            break
    if not loaded:
        raise _refusal(file, f"{where or 'its state dict '}is empty: there are no tensors to convert")
    for key, value in loaded.items():
        if not isinstance(key, str):
            raise _refusal(file, f"{where}has a key {key!r} that is not a name; a state dict's keys are strings")
        if not isinstance(value, torch.Tensor):
            kind = "a mapping" if isinstance(value, Mapping) else with_article(type(value).__name__)
            raise _refusal(
                file,
                f"{where}holds {key!r}: {kind}, not a tensor; a state dict maps names to tensors "
                f"(save model.state_dict(), or a checkpoint with it under {' or '.join(map(repr, WRAPPERS))})",
            )
        if value.layout != torch.strided or value.is_quantized or str(value.dtype) not in SAFETENSORS_DTYPES:
            raise _refusal(
                file,
                f"{where}holds {key!r}: a {value.dtype} tensor ({value.layout}), which a .safetensors file does not "
                "hold; make it a dense float tensor first (tensor.dequantize(), .to_dense() or .float())",
            )
    return dict(loaded)


def _raw(torch: Any, tensor: Any) -> tuple[str, tuple[int, ...], bytes]:
    """A tensor's safetensors dtype, shape and bytes (little-endian, as torch keeps them on x86 and ARM)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return SAFETENSORS_DTYPES[str(tensor.dtype)], tuple(tensor.shape), flat.view(torch.uint8).numpy().tobytes()


def summary(count: int, size: int) -> str:
    """What convert says it wrote: '62 tensors, 44.7 MiB'."""
    return f"{count:,} tensor{'s' if count != 1 else ''}, {size_shown(size)}"
