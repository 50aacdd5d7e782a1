"""Why the network chose a class: the image beside a map of gradient × input, and the scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netspec.explain import attribution
from netspec.pictures.canvas import DIVERGING, POSITIVE, pyplot

if TYPE_CHECKING:
    from netspec.network import Network


def draw(network: Network, image, title: str):
    """A figure: the picture as the network sees it, where its pixels pushed the top score, the scores."""
    plt = pyplot()
    x = network.inputs([image])[0]
    scores = network.forward(x[None])[0]
    chosen = int(scores.argmax())
    push = attribution(network, x, chosen).sum(axis=0)  # channels added: one value per pixel
    limit = float(np.abs(push).max()) or 1.0
    figure, (seen, heat, bars) = plt.subplots(
        1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1, 1.25, 1.1]}, layout="constrained"
    )
    figure.get_layout_engine().set(w_pad=0.15)  # inches around each panel: its labels never touch the next one's
    shown = np.moveaxis(x, 0, -1)
    low, high = shown.min(), shown.max()
    seen.imshow((shown - low) / ((high - low) or 1), cmap="gray" if shown.shape[-1] == 1 else None)
    seen.set(title="the input, as the network reads it", xlabel="column", ylabel="row")
    mapped = heat.imshow(push, cmap=DIVERGING, vmin=-limit, vmax=limit)
    heat.set(
        title=f"what pushed '{network.classes[chosen]}' up (purple) or down (orange)", xlabel="column", ylabel="row"
    )
    figure.colorbar(mapped, ax=heat, label="gradient × input (channels added)")
    order = np.argsort(scores)
    bars.barh(
        [network.classes[i] for i in order],
        scores[order],
        color=[POSITIVE if i == chosen else "#999999" for i in order],
    )
    # No "class" label beside the class names: they say it, and it crowded the colour bar's label.
    bars.set(title="scores", xlabel="score")
    figure.suptitle(f"{title}: {network.classes[chosen]} ({scores[chosen]:.4f})")
    return figure
