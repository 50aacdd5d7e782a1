"""The executable network: layers with their arrays, a forward pass, predictions and saving."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netspec import fusion, graph
from netspec import threads as blas
from netspec.errors import InputError, Problem
from netspec.graph import INPUT
from netspec.node import Node
from netspec.spec import Spec

if TYPE_CHECKING:
    from netspec.summary import Summary


class Network:
    """A network built from a spec; `netspec.load` or `netspec.build` make one."""

    def __init__(self, spec: Spec, layers: list[Node], fuse: bool = True):
        """`fuse`: fold each batch norm into the convolution or dense layer before it when running (see
        netspec.fusion); False runs every layer by itself, as training does."""
        self.spec = spec
        self.layers = layers
        self.fuse = fuse
        self._prepare()

    def _prepare(self) -> None:
        """Bind each layer's runner to its arrays (so arrays are changed in place, never replaced)."""
        steps = fusion.plan(self.layers, self.fuse)
        self._steps = [step.run for step in steps]  # made once: running is a loop over these
        self._step_layers = [step.layer for step in steps]
        # A chain (each step reads the one before) runs as a bare loop over the steps; a graph runs
        # its steps with each one's inputs looked up by name, and drops values no later step reads.
        self._chain = graph.is_chain(steps)
        self._program = [
            (step.run, reads, name, freed) for step, (reads, name, freed) in zip(steps, graph.schedule(steps))
        ]
        self._input_shape = self.spec.input.shape
        self._dtype = np.dtype(self.spec.dtype)
        # Per example, the multiply-adds of the largest layer: times the batch, the size of the largest
        # matrix product, which decides how many BLAS threads pay (netspec.threads).
        self._product = max((layer.multiply_adds for layer in self.layers), default=0)

    def __getstate__(self) -> dict:
        # Pickled as the spec and the arrays alone (cheap to send to workers, e.g. with Dask);
        # the running steps are made again on arrival.
        return {"spec": self.spec, "layers": self.layers, "fuse": self.fuse}

    def __setstate__(self, state: dict) -> None:
        self.spec, self.layers, self.fuse = state["spec"], state["layers"], state.get("fuse", True)
        self._prepare()

    @property
    def classes(self) -> list[str]:
        """The output labels, in output order."""
        return self.spec.classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input: (features,) or (channels, height, width)."""
        return self._input_shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def __repr__(self) -> str:
        sizes = " → ".join(
            str(int(np.prod(s))) for s in [self.input_shape] + [layer.output_shape for layer in self.layers]
        )
        return f"<Network {self.spec.name!r}: {sizes}, classes {self.classes}>"

    def forward(self, x: np.ndarray, threads: int | None = None) -> np.ndarray:
        """The output layer's activations, shape (batch, classes), for a batch of inputs.

        Batch norms run folded into the layer before them where they can (netspec.fusion), from the
        arrays as they are at each call.

        Args:
            x: shape (batch, features) or (batch, channels, height, width), as the input says.
            threads: BLAS threads for the matrix products (default: NETSPEC_NUM_THREADS if set, else
                one for a batch too small to gain from more, see netspec.threads).

        Raises:
            InputError: the array's shape does not fit the input (NS305).
        """
        if type(x) is not np.ndarray or x.dtype != self._dtype or x.shape[1:] != self._input_shape:
            x = self._batch(x)  # the checks and conversions; an array already right skips them
        limit = blas.for_work(len(x) * self._product, self._dtype.itemsize, threads)
        if limit is None:  # no limit to hold (most small batches): not even the `with`
            if self._chain:
                for step in self._steps:
                    x = step(x)
                return x
            return self._run_graph(x)
        with blas.limited(limit):
            if self._chain:
                for step in self._steps:
                    x = step(x)
                return x
            return self._run_graph(x)

    def _run_graph(self, x: np.ndarray) -> np.ndarray:
        """The output of a graph for batch `x`: each layer reads its inputs by name, in spec order.

        A value is dropped as soon as the last layer reading it has run, so that a forward pass
        holds only what is still to be read (its widest point), not every layer's output.
        """
        values = {INPUT: x}
        for step, reads, name, freed in self._program:
            y = step(*[values[read] for read in reads])
            for read in freed:
                del values[read]
            values[name] = y
        return y

    def threads_for(self, batch: int, threads: int | None = None) -> int | None:
        """The BLAS threads netspec holds for work on batches of `batch` examples: `threads` or
        NETSPEC_NUM_THREADS if given, else 1 where the products are too small to gain from more,
        else None (BLAS as it is set)."""
        return blas.for_work(batch * self._product, self._dtype.itemsize, threads)

    @property
    def ends_in_softmax(self) -> bool:
        """Whether the output layer's activation is softmax, so that its scores are probabilities."""
        last = self.layers[-1]
        return last.kind.activation(last.spec) == "softmax"

    def forward_with_backprop(self, x: np.ndarray, train: bool = False, rng: np.random.Generator | None = None):
        """Output for batch `x` (already an input batch), and the function that takes gradients back through it.

        The function takes `grad`, the gradient of the output, and returns (the input's gradient,
        [each layer's {parameter: gradient}]). With `preactivation=True`, grad is the gradient of
        the output layer's value before its activation (a loss folded with softmax gives that);
        `input_grads`, one flag per layer, says which layers' input gradients are needed (all by
        default; `netspec.graph.needs_input_grads` gives the ones training needs), so that layers
        below the first one with parameters do no needless work.

        A layer read by several layers (a shortcut) gets the sum of their gradients, as micrograd
        accumulates into a value read twice.
        """
        values = {INPUT: x}
        backprops = []
        for layer in self.layers:
            inputs = [values[name] for name in layer.inputs]
            y, backprop = layer.kind.forward(layer.spec, layer.params, inputs, train, rng)
            values[layer.name] = y
            backprops.append(backprop)
        del values  # each backprop holds what it needs
        layers = self.layers

        def backward(grad: np.ndarray, preactivation: bool = False, input_grads: list[bool] | None = None):
            grads: list[dict[str, np.ndarray]] = [{}] * len(backprops)
            pending = {layers[-1].name: grad}  # each value's gradient, summed over the layers reading it
            for i in range(len(backprops) - 1, -1, -1):
                dy = pending.pop(layers[i].name, None)
                if dy is None:  # no gradient reaches it: no layer below it learns (see input_grads)
                    continue
                needed = True if input_grads is None else input_grads[i]
                dxs, grads[i] = backprops[i](dy, preactivation=preactivation, input_grad=needed)
                preactivation = False
                for name, dx in zip(layers[i].inputs, dxs):
                    if dx is not None:
                        # Not +=: a merge hands the same array to each of its inputs.
                        pending[name] = dx if name not in pending else pending[name] + dx
            return pending.get(INPUT), grads

        return y, backward

    def inputs(self, sources: Any, max_pixels: int | None = None) -> np.ndarray:
        """A batch array, as the first layer reads it, from image paths, PIL images, or numbers.

        One path or one PIL image is a batch of one. Numbers (arrays or nested lists) are a batch
        shaped as the input, or one input alone (a vector of the input's length, or one image array
        of its shape), which becomes a batch of one. A vector input's `mean` and `std` are applied
        to numbers given here, as an image input's are applied to images when they are read.
        """
        if _is_image_source(sources):
            sources = [sources]
        if isinstance(sources, (list, tuple)) and any(_is_image_source(s) for s in sources):
            rows = [self._sample(s, max_pixels) for s in sources]
            return np.stack(rows).astype(self.dtype, copy=False)
        features = self.spec.input.standardised
        if features is None:
            return self._batch(sources, single=True)
        values = self._batch(sources, single=True, dtype=np.float64)
        if features.mean is not None:
            values = values - np.asarray(features.mean)
        if features.std is not None:
            values = values / np.asarray(features.std)
        return values.astype(self.dtype, copy=False)

    def scores(self, sources: Any, threads: int | None = None) -> np.ndarray:
        """Scores per class for images or numbers: shape (batch, classes), or (classes,) for one input.

        One input is one image path, one PIL image, a vector of the input's length, or one image array
        of its shape; a list of paths or images, or a batch array, gives a batch of scores.
        `threads`: BLAS threads, as for forward.
        """
        scores = self.forward(self.inputs(sources), threads)
        return scores[0] if self._is_one(sources) else scores

    def predict(self, sources: Any, threads: int | None = None) -> list[str] | str:
        """The predicted class label for each image or array: the class with the highest score.

        One input (one path, one PIL image, a vector of the input's length, or one image array of
        its shape) gives one label; a list of paths or images, or a batch array, gives a list of labels.
        `threads`: BLAS threads, as for forward.

        Raises:
            InputError: an input whose scores are not finite (NS306): it has no meaningful label.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            scores = self.forward(self.inputs(sources), threads)
        finite = np.isfinite(scores).all(axis=1)
        if not finite.all():
            bad = ", ".join(str(i) for i in np.flatnonzero(~finite)[:10])
            raise InputError(
                Problem("NS306", f"the scores of input(s) {bad} are not finite (overflow); no label given")
            )
        labels = [self.classes[i] for i in scores.argmax(axis=1)]
        return labels[0] if self._is_one(sources) else labels

    def classify_files(
        self,
        paths: Iterable[str | Path],
        batch_size: int = 64,
        threads: int | None = None,
        max_pixels: int | None = None,
    ) -> Iterator[tuple[Any, np.ndarray | InputError]]:
        """Classify many files as `netspec run` does, batch by batch, yielding each input's result in order.

        Args:
            paths: image files and folders (every image below a folder, in name order); for a
                `features` input, .csv, .npy and .npz files of samples, and folders of them.
            batch_size: inputs per forward pass.
            threads: threads decoding images (default: one per core), and BLAS threads, as for forward.
            max_pixels: refuse larger images before decoding them (default: netspec.images.MAX_PIXELS).

        Yields:
            (where, result): `where` is the image's path, or for numbers a netspec.samples.Row (the
            file and the line or index, shown as `iris.csv:3`), or the path of a file or folder that
            could not be read; `result` is the scores, shape (classes,), or the InputError saying why
            there are none (an unreadable file, scores that overflowed). One failure stops nothing.

        Raises:
            InputError: a folder given holds nothing to classify.
        """
        from netspec.batches import classify_files  # a thread pool only for those who classify files

        return classify_files(self, paths, batch_size, threads, max_pixels)

    def _is_one(self, sources: Any) -> bool:
        """Whether `sources` is one input (a path, a PIL image, one input array), whose results come unbatched."""
        if _is_image_source(sources):
            return True
        if isinstance(sources, (list, tuple)) and any(_is_image_source(s) for s in sources):
            return False
        return np.shape(sources) == self._input_shape

    def fit(self, x: Any, y: Any, on_batch=None, on_epoch=None, threads: int | None = None, **options: Any):
        """Learn the weights from inputs `x` and labels `y` (class indices or label strings).

        `x` is numbers as `inputs` takes them: a vector input's `mean` and `std` are applied to it.

        Options are those of the spec's `training:` section (optimizer, learning_rate, momentum,
        weight_decay, epochs, batch_size, val_split, patience, seed); given ones override the spec's.
        `threads`: BLAS threads for the whole run (default: NETSPEC_NUM_THREADS if set, else
        chosen for the batch size, see netspec.threads).
        Returns the netspec.train.History of the run; the network keeps the best epoch's arrays.

        Raises:
            SpecError: an option out of range. InputError / DataError: inputs or labels that do not fit.
        """
        from netspec.train import fit, resolve_options

        settings = resolve_options(self.spec, **options)
        x, y = self._examples(x, y)
        return fit(self, x, y, settings, on_batch, on_epoch, threads)

    def evaluate(self, x: Any, y: Any, threads: int | None = None):
        """Accuracy, per-class precision, recall and F1, and the confusion matrix (a netspec.train.Evaluation).

        `threads`: BLAS threads, as for forward.
        """
        from netspec.train import evaluate

        return evaluate(self, *self._examples(x, y), threads)

    def summary(self, expand: bool = False) -> Summary:
        """The table of layers and totals that `netspec summary` prints; `print(network.summary())` shows it.

        Its `rows` (name, type, output_shape, params, multiply_adds, activation, inputs) and totals are numbers;
        for a graph (`graph`), the table shows what each layer reads. A spec with blocks also has `units`,
        one row per use of a block, which the table shows unless `expand`.
        """
        from netspec.summary import summarise

        return summarise(self.spec, expand)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write this network as a spec (`path`) plus a `.npz` of its arrays beside it.

        Loading the written spec gives exactly the same arrays. Returns the two paths written.
        """
        # Imported here, as training is below: writing and learning are off the path of `netspec run`.
        from netspec.saving import save

        return save(self, path)

    def _examples(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        from netspec.train.data import to_indices

        x, y = self.inputs(x), to_indices(y, self.classes)  # a vector input's mean and std applied
        if len(x) != len(y):
            raise InputError(Problem("NS305", f"{len(x)} inputs but {len(y)} labels; give one label per input"))
        if not np.isfinite(x).all():
            raise InputError(Problem("NS305", "inputs hold NaN or infinite values; every input must be finite"))
        return x, y

    def _sample(self, source: Any, max_pixels: int | None = None) -> np.ndarray:
        if not _is_image_source(source):
            return self._batch([source])[0]
        if self.spec.input.image is None:
            raise InputError(
                Problem("NS305", f"this network reads {self.input_shape[0]} numbers, not images; pass arrays")
            )
        # Imported here: PIL is only needed by networks that read images.
        from netspec import images

        return images.read(source, self.spec.input.image, max_pixels or images.MAX_PIXELS)

    def _batch(self, x: Any, single: bool = False, dtype: Any = None) -> np.ndarray:
        """Numbers as a batch shaped (batch, *input shape); with `single`, one input alone is a batch of one."""
        expected = f"(batch, {', '.join(map(str, self.input_shape))})"
        try:
            raw = np.asarray(x)
        except ValueError:  # ragged nested lists
            raw = np.asarray(None)
        if raw.size == 0 and raw.ndim == 1:  # an empty list: an empty batch
            raw = raw.reshape(0, *self.input_shape).astype(np.float64)
        if raw.dtype.kind not in "biuf":
            raise InputError(
                Problem("NS305", f"inputs must be numbers shaped {expected}, got {type(x).__name__} values")
            )
        if single and raw.shape == self.input_shape:
            raw = raw[np.newaxis]
        flat = int(np.prod(self.input_shape))
        if raw.shape[1:] != self.input_shape and not (raw.ndim == 2 and raw.shape[1] == flat):
            one = f" or {tuple(self.input_shape)} for one input" if single else ""
            raise InputError(Problem("NS305", f"input batch has shape {raw.shape}, expected {expected}{one}"))
        return raw.reshape(len(raw), *self.input_shape).astype(dtype or self.dtype, copy=False)


def _is_image_source(value: Any) -> bool:
    if isinstance(value, (str, Path)):
        return True
    image_module = sys.modules.get("PIL.Image")  # a PIL image exists only if PIL was imported
    return image_module is not None and isinstance(value, image_module.Image)
