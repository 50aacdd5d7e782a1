"""Fuzz the image reader: any bytes give an input array or an InputError, never another exception.

pip install atheris && python fuzz/fuzz_images.py -max_total_time=600 -rss_limit_mb=2048 fuzz/corpus/images
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import netspec
    from netspec import images
    from netspec.spec import ImageInput

IMAGE = Path(tempfile.mkdtemp(prefix="netspec-fuzz-")) / "image"
SHAPE = ImageInput.model_validate({"width": 8, "height": 8, "color": "rgb"})


def one_input(data: bytes) -> None:
    IMAGE.write_bytes(data)
    start = time.perf_counter()
    try:
        array = images.read(IMAGE, SHAPE, max_pixels=4_000_000)
    except netspec.InputError:
        return
    assert array.shape == (3, 8, 8)
    assert time.perf_counter() - start < 1.0, "took more than a second"


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
