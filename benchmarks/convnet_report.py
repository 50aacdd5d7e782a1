"""The tables of `python -m benchmarks.convnets`, in markdown as docs/performance.md records them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.convnet_memory import Memory
    from benchmarks.convnets import Forward, Train

TOLERANCE = 1e-4
LABELS = {"1": "1 thread", "default": "default"}
DENSE_TARGETS = {1: 1.2, 64: 1.0}
"""docs/performance.md: batch 1 at most 1.2× the plain NumPy chain, batch 64 no slower than it."""


def markdown(forward: list[Forward], train: list[Train], memory: list[Memory], dense) -> str:
    parts = []
    if forward:
        lines = [
            "| forward, float32 | threads | netspec ms | onnxruntime ms | PyTorch ms | ÷ faster (≤ 1.3×) | ÷ PyTorch (≤ 1.0×) | scores (≤ 1e-4) | target |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for row in forward:
            ms, worst = row.ms, max(row.error.values())
            lines.append(
                f"| {row.case} | {LABELS[row.threads]} | {ms['netspec']:,.1f} | {ms['onnxruntime']:,.1f} | {ms['PyTorch']:,.1f} | "
                f"{ms['netspec'] / row.faster:.2f}× | {ms['netspec'] / ms['PyTorch']:.2f}× | "
                f"{'agree' if worst <= TOLERANCE else 'DIFFER'} ({worst:.0e}) | {'met' if row.met else 'not met'} |"
            )
        parts.append("\n".join(lines))
    if train:
        lines = [
            "| training step (forward, backward, Adam) | threads | netspec ms | PyTorch ms | ÷ PyTorch (≤ 1.5×) | target |",
            "| --- | --- | ---: | ---: | ---: | --- |",
        ]
        for row in train:
            ratio = row.ms["netspec"] / row.ms["PyTorch"]
            lines.append(
                f"| {row.case} | {LABELS[row.threads]} | {row.ms['netspec']:,.1f} | {row.ms['PyTorch']:,.1f} | "
                f"{ratio:.2f}× | {'met' if row.met else 'not met'} |"
            )
        parts.append("\n".join(lines))
    if memory:
        lines = [
            "| peak memory, 1 thread (rise of the resident set's high-water mark) | netspec MB | onnxruntime MB | PyTorch MB | ÷ PyTorch (≤ 1.5×) | target |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in memory:
            ort = f"{row.mb['onnxruntime']:,.1f}" if "onnxruntime" in row.mb else "—"
            verdict = ("met" if row.met else "not met") if row.mode == "forward" else "stated"
            lines.append(
                f"| {row.case}, {'one forward pass' if row.mode == 'forward' else 'one training step'} | {row.mb['netspec']:,.1f} | "
                f"{ort} | {row.mb['PyTorch']:,.1f} | {row.mb['netspec'] / row.mb['PyTorch']:.2f}× | {verdict} |"
            )
        parts.append("\n".join(lines))
    if dense:
        lines = [
            "| dense 784-256-128-10, float32, default threads | netspec µs | plain NumPy µs | onnxruntime µs | PyTorch µs | ÷ plain NumPy | target |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for batch, us in dense:
            ratio = us["netspec"] / us["plain NumPy"]
            cells = " | ".join(f"{us[label]:,.1f}" if label in us else "—" for label in ("onnxruntime", "PyTorch CPU"))
            verdict = "met" if ratio <= DENSE_TARGETS[batch] else "not met"
            lines.append(
                f"| batch {batch} | {us['netspec']:,.1f} | {us['plain NumPy']:,.1f} | {cells} | {ratio:.2f}× "
                f"(≤ {DENSE_TARGETS[batch]}×) | {verdict} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
