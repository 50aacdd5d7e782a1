"""The training loop: minibatches, backpropagation, validation, best epoch and early stopping."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from netspec import threads as blas
from netspec.errors import DataError, Problem, SpecError
from netspec.graph import needs_input_grads
from netspec.spec import Spec, Training
from netspec.train.loss import cross_entropy
from netspec.train.optimizers import SGD, Adam
from netspec.validation import problems_from

if TYPE_CHECKING:
    from netspec.network import Network

DEFAULT_RATES = {"adam": 0.001, "sgd": 0.01}


@dataclass
class Epoch:
    """What one epoch achieved."""

    number: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    samples_per_second: float


@dataclass
class History:
    """Every epoch of a training run, and which one the network's arrays now come from."""

    epochs: list[Epoch] = field(default_factory=list)
    best_epoch: int | None = None
    """The epoch whose arrays the network kept: 0 for the starting arrays."""
    start_val_accuracy: float | None = None
    """Validation accuracy of the starting arrays (with validation data)."""
    stopped_early: bool = False
    interrupted: bool = False
    diverged: bool = False
    """The loss became infinite or NaN (usually a learning rate too large); training stopped there."""

    @property
    def best(self) -> Epoch | None:
        """The epoch whose arrays the network kept (None: the starting arrays, or nothing finished)."""
        return next((e for e in self.epochs if e.number == self.best_epoch), None)


def resolve_options(spec: Spec, **overrides: Any) -> Training:
    """The spec's `training:` settings with the given (non-None) overrides, validated as one."""
    base = spec.training.model_dump(exclude_unset=True) if spec.training else {}
    given = {key: value for key, value in overrides.items() if value is not None}
    if given.get("patience") == 0:  # the command line's way to say "never stop early"
        given["patience"] = None
    try:
        options = Training.model_validate({**base, **given})
    except ValidationError as err:
        problems = [p.__class__(p.code, p.message, ("training", *p.path)) for p in problems_from(err, Training)]
        raise SpecError(problems) from None
    if options.learning_rate is None:
        options = options.model_copy(update={"learning_rate": DEFAULT_RATES[options.optimizer]})
    if options.seed is None:
        options = options.model_copy(update={"seed": spec.seed})
    return options


def fit(
    network: Network,
    x: np.ndarray,
    y: np.ndarray,
    options: Training,
    on_batch: Callable[[int, int, float, float], None] | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
    threads: int | None = None,
) -> History:
    """Train `network` in place on inputs `x` and class indices `y`.

    A `val_split` fraction of the examples (chosen with the seed) is held out; after each epoch
    the network is measured on it, and at the end it keeps the arrays of the epoch with the best
    validation accuracy — or the starting arrays (epoch 0) if no epoch beat them. Without
    validation data it keeps the last finished epoch. If the loss stops being finite, training
    stops and the network keeps the best arrays before that. Ctrl-C ends training after the
    current batch, keeping the best so far.

    `on_batch(seen, total, loss, accuracy)` is called after each step with the epoch's running
    figures, `on_epoch(epoch)` after each epoch. `threads`: BLAS threads for the whole run
    (default: NETSPEC_NUM_THREADS if set, else chosen for the batch size by netspec.threads).

    Raises:
        DataError: no examples are left to train on (NS403).
    """
    # Chosen once for the run from the size of a step's products; undone when fit ends, however it ends.
    with blas.limited(network.threads_for(min(options.batch_size, len(x)), threads)):
        return _train(network, x, y, options, on_batch, on_epoch)


def _train(network, x, y, options, on_batch, on_epoch) -> History:
    rng = np.random.default_rng(options.seed)
    noise = np.random.default_rng([options.seed, 1])  # dropout's masks, apart from the shuffling's stream
    order = rng.permutation(len(x))
    held = int(round(len(x) * options.val_split)) if len(x) > 1 else 0
    val, train = order[:held], order[held:]
    x_val, y_val = x[val], y[val]  # gathered once, not again after every epoch
    if len(train) == 0:
        split = f" once val_split {options.val_split:g} holds out {held}" if held else ""
        raise DataError(Problem("NS403", f"no examples to train on: the data has {len(x)}{split}"))
    params = [layer.params for layer in network.layers]
    optimizer = _optimizer(options, params, [layer.kind.decayed for layer in network.layers])
    scorer = logits_of(network)
    history, waited = History(best_epoch=0), 0
    # The starting arrays are the first candidate: more epochs must beat them to be kept.
    best_params = _copies(params)
    best_score: tuple = (-np.inf,)
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected and reported, not warned about
        if held:
            start_loss, start_accuracy = measure(scorer, x_val, y_val)
            history.start_val_accuracy = start_accuracy
            if np.isfinite(start_loss):
                best_score = (start_accuracy, -start_loss)
        try:
            for number in range(1, options.epochs + 1):
                start = time.perf_counter()
                shuffled = train[rng.permutation(len(train))]
                loss, correct = _epoch(scorer, x, y, shuffled, options, optimizer, on_batch, noise)
                seconds = time.perf_counter() - start
                val_loss = val_accuracy = None
                if held:
                    val_loss, val_accuracy = measure(scorer, x_val, y_val)
                epoch = Epoch(number, loss, correct, val_loss, val_accuracy, seconds, len(train) / max(seconds, 1e-9))
                history.diverged = (
                    not np.isfinite(loss)
                    or (held and not np.isfinite(val_loss))
                    or not all(np.isfinite(a).all() for layer in params for a in layer.values())
                )
                # The record of the best epoch is made before anything else, so that Ctrl-C at any
                # later moment finds it complete.
                score = (val_accuracy, -val_loss) if held else (number,)
                if not history.diverged and score > best_score:
                    best_score, best_params, history.best_epoch, waited = score, _copies(params), number, 0
                else:
                    waited += 1
                history.epochs.append(epoch)
                if on_epoch:
                    on_epoch(epoch)
                if history.diverged:
                    break
                if options.patience is not None and waited >= options.patience:
                    history.stopped_early = True
                    break
        except KeyboardInterrupt:
            history.interrupted = True
    for layer, best in zip(params, best_params):
        for key, array in best.items():
            np.copyto(layer[key], array)  # in place: the running steps keep the arrays they were bound to
    return history


def _optimizer(options: Training, params, decayed: list[frozenset[str]]):
    if options.optimizer == "sgd":
        return SGD(params, options.learning_rate, options.momentum, options.weight_decay, decayed)
    return Adam(params, options.learning_rate, options.weight_decay, decayed=decayed)


def _copies(params: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Every layer's arrays copied: a best epoch kept while training goes on changing them in place."""
    return [{key: array.copy() for key, array in layer.items()} for layer in params]


def _epoch(network, x, y, order, options, optimizer, on_batch, noise) -> tuple[float, float]:
    total_loss, correct, seen = 0.0, 0, 0
    layers = network.layers
    # A layer's input gradient is needed only if some layer it reads from has parameters to learn.
    learning_before = needs_input_grads(layers)
    for start in range(0, len(order), options.batch_size):
        batch = order[start : start + options.batch_size]
        out, backward = network.forward_with_backprop(x[batch], train=True, rng=noise)
        targets = y[batch]
        loss, grad = cross_entropy(out, targets)
        total_loss += loss * len(batch)
        correct += int((out.argmax(axis=1) == targets).sum())
        _, grads = backward(grad, False, learning_before)
        optimizer.step([layer.params for layer in layers], grads)
        seen += len(batch)
        if on_batch:
            on_batch(seen, len(order), total_loss / seen, correct / seen)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def logits_of(network: Network) -> Network:
    """The network itself, or, if it ends in softmax, the same network (sharing its arrays) giving logits.

    The loss is computed from logits, as PyTorch's cross_entropy: probabilities that underflowed
    to 0 would make it infinite, or, capped, report a loss far below the true one.
    """
    if not network.ends_in_softmax:
        return network  # its outputs are taken as logits already
    from netspec.network import Network

    last = network.layers[-1]
    linear = replace(last, spec=last.spec.model_copy(update={"activation": "linear"}))
    return Network(network.spec, [*network.layers[:-1], linear])


def measure(network: Network, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean loss and accuracy on examples, computed in chunks to bound memory.

    `network` gives logits (see `logits_of`): the loss is the cross-entropy of their softmax.
    """
    total, correct = 0.0, 0
    for start in range(0, len(x), 1024):
        out = network.forward(x[start : start + 1024])
        targets = y[start : start + 1024]
        total += cross_entropy(out, targets)[0] * len(targets)
        correct += int((out.argmax(axis=1) == targets).sum())
    return total / max(len(x), 1), correct / max(len(x), 1)
