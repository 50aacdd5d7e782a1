"""What every picture shares: loading matplotlib headless, its colours, and writing the file."""

from __future__ import annotations

import io
from pathlib import Path

from netspec.errors import MissingExtra, Problem, SpecError
from netspec.files import atomic_write

FORMATS = (".png", ".svg", ".pdf")
# Okabe–Ito colours: told apart by people with colour-blindness, and in grey by lightness.
POSITIVE, NEGATIVE, NEUTRAL = "#0072B2", "#D55E00", "#999999"
DIVERGING = "PuOr"  # orange below 0, purple above: reads in grey and for colour-blind people
SEQUENTIAL = "viridis"


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a clear error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra(
            Problem("NS601", "pictures need matplotlib: pip install 'matplotlib>=3.7' (netspec's plot extra)")
        ) from None
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # SVG keeps text as text: searchable, selectable
    import matplotlib.pyplot as plt

    return plt


def check_path(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise SpecError(
            Problem("NS602", f"pictures are written as {', '.join(FORMATS)}; got {path.name!r}", file=str(path))
        )


def ready_to_draw(path: Path) -> None:
    """Check, before any long work, that a picture can be written to `path` (its format, matplotlib)."""
    check_path(path)
    pyplot()


def save(figure, path: Path) -> Path:
    """Write the figure in the format its suffix names, whole or not at all, and close it."""
    check_path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=120, bbox_inches="tight")
    pyplot().close(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as stream:
        stream.write(buffer.getvalue())
    return path
