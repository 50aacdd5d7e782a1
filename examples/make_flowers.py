"""Draw a synthetic two-class flower data set: "red rose" versus "white lotus".

Every picture is drawn from scratch with Pillow, so no download is needed and the same seed always gives
byte-identical PNGs. Size, position, rotation, petal count, shade and background vary from picture to
picture, but colour and petal shape always tell the classes apart, so a tiny dense network can learn them.
Pictures are drawn at four times the output size and downsampled with LANCZOS for smooth edges.

    python examples/make_flowers.py OUT_DIR [--count 200] [--seed 0] [--size 64]
    python examples/make_flowers.py --samples examples/images
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from netspec.files import atomic_write

SUPERSAMPLE = 4
# Background palettes: each picture blends two of these top to bottom. The choice never depends on the class,
# so the background carries no information about the label.
BACKGROUND_FAMILIES = {
    "sky blue": [(120, 170, 230), (170, 205, 240), (60, 110, 190)],
    "green": [(70, 130, 60), (120, 170, 90), (30, 80, 40)],
    "grey": [(110, 110, 115), (170, 170, 170), (60, 60, 65)],
    "brown": [(120, 85, 50), (160, 120, 80), (80, 55, 35)],
    "dark": [(20, 20, 30), (35, 30, 50)],
}
BACKGROUNDS = [rgb for family in BACKGROUND_FAMILIES.values() for rgb in family]
# The seeds that give the nicest sample pictures for examples/images/.
SAMPLE_SEEDS = {"red rose": 3, "white lotus": 6}


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    """Shift each channel of a colour by up to +/- amount, staying inside 0..255."""
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _canvas(rng: np.random.Generator, size: int) -> Image.Image:
    """Return a vertical gradient between two random background colours at working resolution."""
    top, bottom = (np.array(_jitter(rng, BACKGROUNDS[i], 20), float) for i in rng.integers(len(BACKGROUNDS), size=2))
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    pixels = np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3))
    return Image.fromarray(pixels.round().astype(np.uint8), "RGB")


def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float, n: int = 40) -> list[tuple[float, float]]:
    """Polygon for an ellipse rotated by angle (radians); ImageDraw.ellipse cannot rotate."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return list(zip(cx + x * c - y * s, cy + x * s + y * c))


def _petal(cx: float, cy: float, length: float, width: float, angle: float, n: int = 24) -> list[tuple[float, float]]:
    """Pointed lotus petal from (cx, cy) outward along angle (radians, 0 = up): a lens with a sharp tip."""
    t = np.linspace(0, np.pi, n)
    along = np.concatenate([length * (1 - np.cos(t)) / 2, length * (1 + np.cos(t)) / 2])
    # sin**1.5 narrows both ends, and the base stays a little wider than the tip.
    side = width * np.sin(t) ** 1.5 * (1.2 - 0.4 * along[:n] / length)
    across = np.concatenate([side, -side[::-1]])
    c, s = np.cos(angle), np.sin(angle)
    return list(zip(cx + across * c + along * s, cy + across * s - along * c))


def _finish(img: Image.Image, size: int) -> Image.Image:
    """Downsample the working canvas to the output size; LANCZOS gives the anti-aliasing."""
    return img.resize((size, size), Image.Resampling.LANCZOS)


def draw_rose(rng: np.random.Generator, size: int = 64) -> Image.Image:
    """Draw one red rose: layered crimson petals around a darker spiral centre, often on a green stem."""
    w = size * SUPERSAMPLE
    img = _canvas(rng, w)
    draw = ImageDraw.Draw(img)
    r = w * rng.uniform(0.22, 0.34)
    cx, cy = w / 2 + rng.uniform(-0.12, 0.12) * w, w / 2 + rng.uniform(-0.12, 0.05) * w
    base = np.array(_jitter(rng, (200, 25, 40), 25), float)
    if rng.random() < 0.7:
        # Stem and leaf sit behind the bloom; they stop it looking like a plain red disc.
        green = _jitter(rng, (50, 120, 45), 20)
        draw.line([(cx, cy), (cx + rng.uniform(-0.3, 0.3) * r, w)], fill=green, width=int(r * 0.14))
        side = rng.choice([-1, 1])
        draw.polygon(_ellipse(cx + side * r * 0.55, cy + r * 1.45, r * 0.45, r * 0.17, side * 0.5), fill=green)
    spin = rng.uniform(0, 2 * np.pi)
    # Outer to inner rings: each is smaller, darker and rotated, which gives the layered, spiralling look.
    for ring, scale in enumerate((1.0, 0.75, 0.52)):
        count = int(rng.integers(5, 8)) - ring
        shade = tuple(int(v) for v in np.clip(base * (1 - 0.17 * ring), 0, 255))
        edge = tuple(int(v * 0.6) for v in shade)
        for k in range(count):
            a = spin + ring * 0.6 + 2 * np.pi * k / count
            px, py = cx + np.cos(a) * r * scale * 0.45, cy + np.sin(a) * r * scale * 0.45
            draw.polygon(_ellipse(px, py, r * scale * 0.6, r * scale * 0.48, a), fill=shade, outline=edge)
    dark = tuple(int(v * 0.45) for v in base)
    draw.ellipse([cx - r * 0.22, cy - r * 0.22, cx + r * 0.22, cy + r * 0.22], fill=dark)
    # An open dark arc round the centre hints at the tightly wound inner petals.
    start, ring_box = float(np.degrees(spin)), [cx - r * 0.3, cy - r * 0.3, cx + r * 0.3, cy + r * 0.3]
    draw.arc(ring_box, start, start + 260, fill=dark, width=int(r * 0.06))
    return _finish(img, size)


def draw_lotus(rng: np.random.Generator, size: int = 64) -> Image.Image:
    """Draw one white lotus: pale pointed petals fanned upward around a yellow centre, often on a green pad."""
    w = size * SUPERSAMPLE
    img = _canvas(rng, w)
    draw = ImageDraw.Draw(img)
    r = w * rng.uniform(0.3, 0.42)
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, w / 2 + rng.uniform(0.08, 0.2) * w
    tilt = rng.uniform(-0.3, 0.3)
    if rng.random() < 0.7:
        # A lily pad under the bloom; the wedge cut out of it makes it read as a pad, not a blob.
        pad = _jitter(rng, (60, 140, 90), 20)
        box = [cx - r * 1.3, cy - r * 0.15, cx + r * 1.3, cy + r * 0.55]
        notch = rng.uniform(200, 340)
        draw.pieslice(box, notch + 15, notch + 345, fill=pad)
    petal = np.array(rng.choice([(250, 250, 245), (252, 225, 232), (248, 240, 215)]), float)
    count = int(rng.integers(5, 10))
    spread = rng.uniform(1.1, 1.5)
    # The back layer is slightly darker and sits between the front petals, so the fan looks full.
    for layer, (scale, dim) in enumerate(((1.0, 0.84), (0.85, 1.0))):
        colour = tuple(int(v * dim) for v in petal)
        outline = tuple(int(v * dim * 0.8) for v in petal)
        for k in range(count - layer):
            side = 2 * (k + 0.5 * (1 - layer)) / max(count - 1, 1) - 1
            # Upright petals are the longest, which gives the lotus its tall, cupped outline.
            length = r * scale * (1 - 0.3 * abs(side))
            draw.polygon(_petal(cx, cy, length, r * 0.22, tilt + spread * side), fill=colour, outline=outline)
    yellow = _jitter(rng, (245, 200, 40), 15)
    draw.ellipse([cx - r * 0.2, cy - r * 0.26, cx + r * 0.2, cy + r * 0.02], fill=yellow)
    return _finish(img, size)


DRAWERS = {"red rose": (draw_rose, "rose"), "white lotus": (draw_lotus, "lotus")}


def _save(img: Image.Image, path: Path) -> None:
    """Write a PNG whole or not at all, so a crash never leaves half a picture behind."""
    with atomic_write(path) as stream:
        img.save(stream, format="PNG")


def make_dataset(out_dir: Path, count_per_class: int, seed: int, size: int = 64) -> None:
    """Write count_per_class PNGs per class into out_dir/<label>/ (ImageFolder layout), deterministic in seed."""
    for label_index, (label, (drawer, stem)) in enumerate(DRAWERS.items()):
        folder = Path(out_dir) / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count_per_class):
            # One generator per picture, so picture i is the same whatever count_per_class is.
            _save(drawer(np.random.default_rng([seed, label_index, i]), size), folder / f"{stem}-{i:04d}.png")


def main() -> None:
    """Command-line entry point: write a data set, or the two sample pictures with --samples."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, help="folder for the data set (one subfolder per class)")
    parser.add_argument("--count", type=int, default=200, help="pictures per class (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=64, help="output width and height in pixels (default 64)")
    parser.add_argument("--samples", type=Path, metavar="DIR", help="write red-rose.png and white-lotus.png to DIR")
    args = parser.parse_args()
    if args.samples is None and args.out_dir is None:
        parser.error("give OUT_DIR, --samples DIR, or both")
    if args.samples is not None:
        args.samples.mkdir(parents=True, exist_ok=True)
        for label, (drawer, _) in DRAWERS.items():
            path = args.samples / f"{label.replace(' ', '-')}.png"
            _save(drawer(np.random.default_rng(SAMPLE_SEEDS[label]), args.size), path)
        print(f"wrote red-rose.png and white-lotus.png ({args.size}x{args.size}) to {args.samples}")
    if args.out_dir is not None:
        make_dataset(args.out_dir, args.count, args.seed, args.size)
        labels = " and ".join(f'"{label}"' for label in DRAWERS)
        print(f"wrote {args.count} pictures per class ({labels}, {args.size}x{args.size}) to {args.out_dir}")


if __name__ == "__main__":
    main()
