"""Sums down the rows of a matrix (a channel's or a filter's values over a batch), fast and in float64.

numpy's reduction down the rows of a (rows, channels) array runs an inner loop as short as the
channels (slow: 20× a BLAS product on 16 channels) and adds naively, so in float32 each sum's error
grows with the rows. Here a product with a ones vector sums each block of BLOCK rows (BLAS: fast,
with an error of a few units in the last place), and the blocks' sums are added in float64.
"""

import numpy as np

BLOCK = 64
"""Rows a float32 partial sum runs over before the partial sums are added in float64."""


def column_sums(rows: np.ndarray) -> np.ndarray:
    """The sum of each column of a C-contiguous (rows, columns) array, in float64."""
    whole = len(rows) // BLOCK * BLOCK
    tail = rows[whole:].sum(axis=0, dtype=np.float64)
    if not whole:
        return tail
    blocks = np.ones(BLOCK, dtype=rows.dtype) @ rows[:whole].reshape(-1, BLOCK, rows.shape[1])
    return blocks.sum(axis=0, dtype=np.float64) + tail


def channel_sums(a: np.ndarray) -> np.ndarray:
    """The sum of each channel (axis 1) of a (batch, channels) or (batch, channels, height, width) array
    over the batch and the image, in float64: `column_sums` where the values are channels-last in
    memory (as a convolution leaves them), numpy's reduction in float64 otherwise."""
    rows = a.transpose(0, 2, 3, 1) if a.ndim == 4 else a
    if not rows.flags.c_contiguous:
        return a.sum(axis=(0, 2, 3) if a.ndim == 4 else 0, dtype=np.float64)
    return column_sums(rows.reshape(-1, a.shape[1]))
