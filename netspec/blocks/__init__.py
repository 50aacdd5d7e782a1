"""Blocks: named groups of layers with parameters, used as layers and expanded into the flat spec.

A spec's top-level `blocks:` defines blocks (`params` with defaults, `layers`); a layer item with
`block:` instead of `type:` uses one (`repeat`, `start`, `first`, `inputs`, a value per parameter).
Expansion works on the YAML data, before pydantic sees it: what comes out is the same network
written flat, its layers named as PyTorch names modules (`layer1.0.conv1`, `layer2.0.downsample.0`),
so validation, building, export and training need to know nothing of blocks.

Each expanded layer keeps its `Origin`: where it is written, and the chain of `Use`s that made it.
`netspec.read_spec` returns an `ExpandedSource`, which shows a problem of the flat spec at the line
of the block's definition with the uses that led there, and sets `Spec.origins` (one `Origin` per
layer, in order) for whoever shows a use as one unit (summary, draw). A spec made in code
(`Spec.model_validate(data)`) has its blocks expanded by `expand_data`, without positions.

The bounds are counted before any layer is made: a use's size is found from one copy of its block
(times `repeat`), so `repeat: 1000000000` is refused at once, without building anything.
"""

from netspec.blocks.expansion import MAX_DEPTH, MAX_LAYERS, expand, expand_data, uses_blocks
from netspec.blocks.origins import ExpandedSource, Origin, Use
from netspec.blocks.reading import BLOCK_KEYS, USE_KEYS

__all__ = [
    "BLOCK_KEYS",
    "MAX_DEPTH",
    "MAX_LAYERS",
    "USE_KEYS",
    "ExpandedSource",
    "Origin",
    "Use",
    "expand",
    "expand_data",
    "uses_blocks",
]
