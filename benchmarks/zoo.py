"""The zoo against torchvision, every model (tests/test_zoo.py runs only the small ones): a markdown table.

    python -m benchmarks.zoo [names...] [--photos 3] [--rounds 5] [--markdown FILE]

For each spec of specs/zoo/ (tests/zoo_oracle.ZOO): torchvision's model with seeded random weights, its
state dict saved as safetensors beside a copy of the spec that loads it by PyTorch's names, and `--photos`
generated photos of odd sizes, read by netspec through the spec's `image` input and by torchvision's
transforms. The table gives the spec's length, the parameter counts (netspec summary's trainable count
against torchvision's), the largest relative difference of the scores (at most 1e-4 to pass), and the
forward time of one image on one thread (netspec `forward(x, threads=1)`, PyTorch eager under
`torch.no_grad()` with `torch.set_num_threads(1)`), medians of `--rounds` taking turns, so that the
ratio holds on a shared machine; the load average is printed with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.shared import medians_taking_turns

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the oracle is shared with the tests

import zoo_oracle  # noqa: E402

HEADER = (
    "| Model | Spec lines | Params (netspec = torchvision) | Max relative difference | "
    "netspec ms/image | PyTorch ms/image | netspec / PyTorch |\n|---|---:|---:|---:|---:|---:|---:|"
)


@dataclass(frozen=True)
class Row:
    name: str
    lines: int
    params: int
    torchvision_params: int
    relative: float
    netspec_ms: float
    torch_ms: float

    def markdown(self) -> str:
        counted = f"{self.params:,}" + (
            "" if self.params == self.torchvision_params else f" ≠ {self.torchvision_params:,}"
        )
        return (
            f"| {self.name} | {self.lines} | {counted} | {self.relative:.1e} | {self.netspec_ms:.0f} | "
            f"{self.torch_ms:.0f} | {self.netspec_ms / self.torch_ms:.2f}× |"
        )

    @property
    def passed(self) -> bool:
        return self.params == self.torchvision_params and self.relative <= zoo_oracle.TOLERANCE


def measure(name: str, photos: int, rounds: int) -> Row:
    import torch

    from netspec.loader import read_checked
    from netspec.summary import summarise

    with tempfile.TemporaryDirectory() as temporary:
        prepared = zoo_oracle.prepare(name, Path(temporary), photos)
        relative = prepared.compare().relative
        one = prepared.network.inputs(prepared.photos[:1])
        torch_one = prepared.inputs[:1]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                seconds = medians_taking_turns(
                    {
                        "netspec": lambda: prepared.network.forward(one, threads=1),
                        "torch": lambda: prepared.model(torch_one),
                    },
                    rounds,
                )
        finally:
            torch.set_num_threads(threads)
    spec = zoo_oracle.ZOO_FOLDER / f"{name}.yaml"
    torchvision_params, _ = zoo_oracle.torchvision_counts(name)
    return Row(
        name=name,
        lines=len(spec.read_text(encoding="utf-8").splitlines()),
        params=summarise(read_checked(spec)).trainable_params,
        torchvision_params=torchvision_params,
        relative=relative,
        netspec_ms=seconds["netspec"] * 1000,
        torch_ms=seconds["torch"] * 1000,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"zoo specs (default: all of {', '.join(zoo_oracle.ZOO)})")
    parser.add_argument("--photos", type=int, default=3, help="photos compared per model (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, taking turns (default 5)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    options = parser.parse_args(argv)
    names = options.names or list(zoo_oracle.ZOO)
    unknown = [name for name in names if name not in zoo_oracle.ZOO]
    if unknown:
        parser.error(f"no zoo spec {', '.join(unknown)}; choose from {', '.join(zoo_oracle.ZOO)}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    print(HEADER, flush=True)
    rows = []
    for name in names:
        rows.append(measure(name, options.photos, options.rounds))
        print(rows[-1].markdown(), flush=True)
    if options.markdown:
        options.markdown.write_text("\n".join([HEADER, *(row.markdown() for row in rows)]) + "\n", encoding="utf-8")
    failed = [row.name for row in rows if not row.passed]
    if failed:
        print(f"not reproduced: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
