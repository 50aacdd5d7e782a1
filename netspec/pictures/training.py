"""Pictures of training and evaluation: loss and accuracy per epoch, and the confusion matrix."""

from __future__ import annotations

import numpy as np

from netspec.pictures.canvas import NEGATIVE, POSITIVE, SEQUENTIAL, pyplot


def curves(history, title: str):
    """Loss and accuracy per epoch, for training and validation data, with the kept epoch marked."""
    plt = pyplot()
    numbers = [e.number for e in history.epochs]
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    loss.plot(numbers, [e.loss for e in history.epochs], color=POSITIVE, marker="o", markersize=3, label="training")
    accuracy.plot(
        numbers, [e.accuracy for e in history.epochs], color=POSITIVE, marker="o", markersize=3, label="training"
    )
    if any(e.val_loss is not None for e in history.epochs):
        loss.plot(
            numbers, [e.val_loss for e in history.epochs], color=NEGATIVE, marker="s", markersize=3, label="validation"
        )
        accuracy.plot(
            numbers,
            [e.val_accuracy for e in history.epochs],
            color=NEGATIVE,
            marker="s",
            markersize=3,
            label="validation",
        )
    for ax in (loss, accuracy):
        if history.best_epoch:
            ax.axvline(
                history.best_epoch,
                color="#999999",
                linestyle="--",
                linewidth=1,
                label=f"kept: epoch {history.best_epoch}",
            )
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    loss.set(title="loss (cross-entropy)", ylabel="loss")
    accuracy.set(title="accuracy", ylabel="accuracy")
    figure.suptitle(title)
    return figure


def confusion(evaluation, title: str):
    """The confusion matrix with its counts, labelled by class."""
    plt = pyplot()
    matrix, labels = evaluation.confusion, evaluation.classes
    size = max(4.5, 0.6 * len(labels) + 2.5)
    figure, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
    shown = ax.imshow(matrix, cmap=SEQUENTIAL)
    ax.set_xticks(range(len(labels)), labels, rotation=45 if max(map(len, labels)) > 3 else 0, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(
        xlabel="predicted class",
        ylabel="true class",
        title=f"{title}\naccuracy {evaluation.accuracy:.2%} of {evaluation.count}",
    )
    middle = matrix.max() / 2
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="black" if count > middle else "white", fontsize=9)
    figure.colorbar(shown, ax=ax, label="examples")
    return figure
