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


WIDTH = 512
"""About how many values a row of `Channels`' working view holds: long enough for numpy's inner loops."""


class Channels:
    """Per-channel arithmetic on (batch, channels) or (batch, channels, height, width) values, fast in the
    layout memory holds them.

    Values a convolution left channels-last broadcast against a (1, channels, 1, 1) vector with an
    inner loop as short as the channels (16 in a CIFAR ResNet: 6× slower than a long one). They are
    worked on instead as rows of k pixels × channels, against the per-channel vector repeated k
    times. Other layouts keep the plain broadcast.
    """

    def __init__(self, x: np.ndarray):
        self.shape, channels = x.shape, x.shape[1]
        rows = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
        self.k = 0  # 0: the plain broadcast
        if rows.flags.c_contiguous and x.size:
            pixels, k = x.size // channels, 1
            while pixels % (2 * k) == 0 and 2 * k * channels <= WIDTH:
                k *= 2
            self.k = k

    def flat(self, a: np.ndarray) -> np.ndarray:
        """An array shaped like x as the working view (a copy if its layout differs from x's)."""
        if not self.k:
            return a
        rows = a.transpose(0, 2, 3, 1) if a.ndim == 4 else a
        return np.ascontiguousarray(rows).reshape(-1, self.k * self.shape[1])

    def vector(self, v: np.ndarray) -> np.ndarray:
        """A per-channel vector, to broadcast against working views."""
        return np.tile(v, self.k) if self.k else v.reshape((1, -1, 1, 1)[: len(self.shape)])

    def sums(self, a: np.ndarray) -> np.ndarray:
        """Each channel's sum of a working view, in float64."""
        return column_sums(a).reshape(self.k, -1).sum(axis=0) if self.k else channel_sums(a)

    def shaped(self, a: np.ndarray) -> np.ndarray:
        """A working view back as x is shaped (a view)."""
        if not self.k:
            return a
        if len(self.shape) == 2:
            return a.reshape(self.shape)
        batch, channels, height, width = self.shape
        return a.reshape(batch, height, width, channels).transpose(0, 3, 1, 2)
