"""Turn an image file into the (channels, height, width) array a spec's image input describes.

The rules, in order (docs/spec-format.md states them for users):
1. Only PNG, JPEG, BMP, GIF, TIFF and WebP are opened; an animated image gives its first frame.
2. EXIF orientation is applied, so a photo is read the way it is shown.
3. 16-bit images are scaled to 0..255 (value / 257), never clipped; 32-bit float images are
   read as 0..255 and clipped (infinities too); a NaN pixel is an error (NS303).
4. Palette images become RGB (or RGBA if they have transparency).
5. Transparent pixels are composited over black: each colour is multiplied by its alpha.
6. Colour: `rgb` gives red, green, blue; `grayscale` gives the luma 0.299 R + 0.587 G + 0.114 B
   (ITU-R BT.601) rounded to the nearest whole value, a half (x.5 exactly) up — see `luma`.
7. Size: with `resize` and `crop`, the shorter side is resized to `resize` pixels (the longer one to
   int(resize × long / short), as torchvision computes it) with Pillow's bilinear filter (or bicubic,
   as `interpolation` says), which antialiases when it shrinks, then the middle crop[0] × crop[1] is cut (its corner at
   round((size - crop) / 2), Python's round, a half to even), black filling a side the image does not
   reach: exactly torchvision's Resize(resize) then CenterCrop(crop) on a PIL image. With `crop` alone,
   only the cut. With neither, the image is resized to width × height with the same filter if its size differs.
8. Pixel values 0..255 map linearly onto `scale: [lo, hi]`, then (value - mean) / std per channel.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from netspec.errors import InputError, Problem
from netspec.inputs import ImageInput

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
"""The image formats netspec opens."""

MAX_PIXELS = 64_000_000
"""Larger images are refused before they are decoded (a decompression bomb guard)."""

ImageSource = str | Path | Image.Image

EXIF_ORIENTATION = 0x0112
"""The EXIF tag saying how a photo is turned (1: as stored); PIL.ExifTags.Base.Orientation."""


def open_image(path: str | Path | io.BytesIO, max_pixels: int = MAX_PIXELS, name: str | None = None) -> Image.Image:
    """Open and fully decode an image file (or the bytes `read_stream` took in), or raise InputError naming it.

    Raises:
        InputError: missing file (NS301), not an image (NS302), truncated (NS303), too large (NS304).
    """
    name = str(path) if name is None else name
    source = path if isinstance(path, io.BytesIO) else _readable(path, name, max_pixels)
    try:
        with warnings.catch_warnings():
            # netspec checks the pixel count itself, with its own limit and message; and Pillow's
            # other warnings (corrupt EXIF, say) are not the user's business once the image reads.
            warnings.simplefilter("ignore")
            image = Image.open(source, formats=FORMATS)
            with image:  # closes the file whatever happens; the decoded first frame stays usable
                width, height = image.size
                if width * height > max_pixels:
                    message = (
                        f"image is {width}×{height} pixels, more than the limit of {max_pixels:,}; "
                        f"scale it down, or raise the limit with --max-pixels {width * height} if you trust the file"
                    )
                    raise InputError(Problem("NS304", message, file=name))
                image.seek(0)
                image.load()
                # Pillow keeps multi-frame files open for seeking: a copy of the first frame needs no file.
                return image.copy() if getattr(image, "n_frames", 1) > 1 else image
    except FileNotFoundError:
        raise InputError(Problem("NS301", "image not found", file=name)) from None
    except UnidentifiedImageError:
        if _is_empty(source):
            where = "nothing came through standard input" if name == "-" else "the file is empty"
            raise InputError(Problem("NS302", f"{where}; give an image", file=name)) from None
        begun = _begins_as(source)
        if begun is not None:  # cut off inside its header: Pillow cannot even tell what it is
            message = f"image is truncated or corrupt (it begins as a {begun} file, but its header cannot be read)"
            raise InputError(Problem("NS303", message, file=name)) from None
        formats = ", ".join(FORMATS)
        raise InputError(Problem("NS302", f"not an image netspec reads ({formats})", file=name)) from None
    except Image.DecompressionBombError:
        # Pillow's own limit, checked as the file opens: raising --max-pixels does not move it.
        pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        message = (
            f"image has more than {pillow_limit:,} pixels, which Pillow refuses as a decompression bomb "
            "whatever --max-pixels allows; scale it down"
        )
        raise InputError(Problem("NS304", message, file=name)) from None
    except InputError:
        raise
    except (IsADirectoryError, PermissionError) as err:
        raise InputError(Problem("NS302", f"cannot read the file: {err.strerror}", file=name)) from None
    except MemoryError:  # not the file's fault: said as what it is
        raise
    except Exception as err:  # noqa: BLE001 - Pillow's decoders raise many kinds on damaged data (fuzzing found IndexError)
        reason = str(err) or type(err).__name__
        raise InputError(Problem("NS303", f"image is truncated or corrupt ({reason})", file=name)) from None


def _is_empty(source: str | Path | io.BytesIO) -> bool:
    """Whether what Pillow was given to open holds no bytes at all (an empty file, nothing piped)."""
    if isinstance(source, io.BytesIO):
        return not source.getbuffer().nbytes
    try:
        return Path(source).stat().st_size == 0
    except OSError:
        return False


_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
"""How the formats netspec reads begin (BMP's 'BM' and WebP's 'RIFF' begin too many other files to tell)."""


def _begins_as(source: str | Path | io.BytesIO) -> str | None:
    """The image format whose signature the file begins with, or None."""
    try:
        if isinstance(source, io.BytesIO):
            start = source.getvalue()[:8]
        else:
            with open(source, "rb") as file:
                start = file.read(8)
    except OSError:
        return None
    return next((kind for signature, kind in _SIGNATURES.items() if start.startswith(signature)), None)


BYTES_PER_PIXEL_AT_MOST = 8
"""Bytes a pixel takes uncompressed at most (16-bit RGBA): what a pipe may send per allowed pixel."""


def _readable(path: str | Path, name: str, max_pixels: int) -> str | Path | io.BytesIO:
    """What Pillow may open for `path`: the path of a file; the bytes of a pipe, read up to a bound.

    A pipe given by name (`cat x.png | netspec run spec.yaml /dev/stdin`) cannot be sought, so Pillow
    would read all of it before netspec could check the pixel count: it is read here, no further
    than the largest image allowed could take. Folders and devices (a terminal, /dev/zero) are refused.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(Problem("NS301", "image not found", file=name)) from None
    except OSError as err:  # no permission on a folder on the way, a symlink loop, a name too long
        raise InputError(Problem("NS302", f"cannot read the file: {err.strerror}", file=name)) from None
    except ValueError:  # a NUL in the name
        raise InputError(Problem("NS302", "the file name holds a NUL character", file=name)) from None
    if stat.S_ISREG(mode):
        return path
    if stat.S_ISDIR(mode):
        raise InputError(Problem("NS302", "is a folder, not an image file", file=name))
    if not stat.S_ISFIFO(mode):
        message = "is a device (a terminal, say), not an image file; give a file, or pipe an image in"
        raise InputError(Problem("NS302", message, file=name))
    with open(path, "rb") as pipe:
        return read_stream(pipe, name, max_pixels)


def read_stream(stream: BinaryIO, name: str, max_pixels: int = MAX_PIXELS) -> io.BytesIO:
    """The bytes of a pipe or stream (standard input, say), read no further than an image of `max_pixels` takes.

    Raises:
        InputError: a terminal rather than piped bytes (NS302), more bytes than that (NS304).
    """
    if stream.isatty():  # reading would wait for typing that never makes an image
        message = "is a device (a terminal, say), not an image file; give a file, or pipe an image in"
        raise InputError(Problem("NS302", message, file=name))
    limit = max_pixels * BYTES_PER_PIXEL_AT_MOST + 2**20
    data = stream.read(limit + 1)
    if len(data) > limit:
        message = (
            f"more than {limit:,} bytes came through the pipe, more than an image of {max_pixels:,} pixels takes; "
            "raise the limit with --max-pixels N if the image is that large"
        )
        raise InputError(Problem("NS304", message, file=name))
    return io.BytesIO(data)


def to_array(image: Image.Image, spec: ImageInput, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The image as a float64 array of shape (channels, height, width), scaled and normalised.

    Every image netspec reads becomes an array here (run, eval, train, --explain, Network.inputs), by
    the rules of the module's docstring, in their order. `max_pixels` bounds the image `resize` makes.
    """
    if image.width == 0 or image.height == 0:
        raise InputError(Problem("NS302", "image has no pixels"))
    # Each step below returns the image itself when it has nothing to do: a copy of a large image
    # per step is time the decoding threads would spend holding the GIL.
    if _orientation(image) != 1:
        from PIL import ImageOps  # imported only for the photos that need it: it costs `netspec run` 4 ms

        image = ImageOps.exif_transpose(image)
    image = _to_8bit(image)
    image = _drop_alpha(image)
    if spec.color == "rgb" and image.mode != "RGB":
        image = image.convert("RGB")
    elif spec.color == "grayscale" and image.mode != "L":
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        image = Image.fromarray(luma(np.asarray(rgb)), "L")
    image = sized(image, spec, max_pixels)
    pixels = np.asarray(image, dtype=np.float64)
    pixels = pixels.reshape(spec.height, spec.width, -1).transpose(2, 0, 1)
    lo, hi = spec.scale
    values = lo + pixels * ((hi - lo) / 255.0)
    if spec.mean is not None:
        values -= np.asarray(spec.mean).reshape(-1, 1, 1)
    if spec.std is not None:
        values /= np.asarray(spec.std).reshape(-1, 1, 1)
    return values


def sized(image: Image.Image, spec: ImageInput, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image at the network's width × height: resized then center-cropped, or resized alone (rule 7).

    Raises:
        InputError: NS304, if `resize` would make more than `max_pixels` pixels (a long thin image).
    """
    if spec.resize is not None:
        width, height = resized_size(image.size, spec.resize)
        if spec.resize * spec.resize > max_pixels:  # no image fits: the spec's number, not the image, is the cause
            message = (
                f"resize: {spec.resize} makes every image at least {spec.resize}×{spec.resize} pixels, more than the "
                f"limit of {max_pixels:,}; lower resize in the spec (torchvision's ImageNet models use 256)"
            )
            raise InputError(Problem("NS304", message))
        if width * height > max_pixels:  # 256 on a 1 × 4000 strip would make 262 million pixels before the crop
            message = (
                f"image is {image.width}×{image.height} pixels: resizing its shorter side to {spec.resize} makes it "
                f"{width}×{height}, more than the limit of {max_pixels:,}; crop it nearer to a square, or raise the "
                f"limit with --max-pixels {width * height} if you trust the file"
            )
            raise InputError(Problem("NS304", message))
        image = image.resize((width, height), _FILTERS[spec.interpolation])
    if spec.crop_size is not None:
        height, width = spec.crop_size
        left, top = centered(image.width, width), centered(image.height, height)
        if (left, top, width, height) != (0, 0, image.width, image.height):
            # Pillow fills what lies outside the image with 0: black, as torchvision pads before it cuts.
            image = image.crop((left, top, left + width, top + height))
    elif image.size != (spec.width, spec.height):
        image = image.resize((spec.width, spec.height), _FILTERS[spec.interpolation])
    return image


_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
"""Pillow's filters by the names `interpolation` takes: the ones torchvision's Resize uses on a PIL image."""


def resized_size(size: tuple[int, int], shorter: int) -> tuple[int, int]:
    """(width, height) with the shorter side `shorter` and the longer int(shorter × long / short).

    torchvision's arithmetic (transforms.functional._compute_resized_output_size): the longer side is
    truncated, not rounded, and a square stays square.
    """
    width, height = size
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


def centered(size: int, crop: int) -> int:
    """Where a centered crop of `crop` pixels starts along a side of `size` (negative: the crop overhangs).

    torchvision's CenterCrop: round((size - crop) / 2) with Python's round (a half to even) when the
    image is larger; when smaller, it pads (crop - size) // 2 before and the rest after.
    """
    if crop > size:
        return -((crop - size) // 2)
    return int(round((size - crop) / 2.0))


def luma(rgb: np.ndarray) -> np.ndarray:
    """Grey values of 8-bit RGB pixels (shape (..., 3)): 0.299 R + 0.587 G + 0.114 B, rounded, a half up.

    Computed exactly, in integers: (299 R + 587 G + 114 B + 500) // 1000. Pillow's convert("L")
    uses a 16-bit fixed-point approximation that is one level off for 9,040 of the 16.7 million
    colours (RGB (77, 240, 14), luma 165.499, gives 166); and 0.299, 0.587 and 0.114 have no exact
    binary form, so the same sum in floating point rounds 3,464 of the 16,782 exact halves down.
    """
    weighted = rgb[..., 0].astype(np.uint32) * 299 + rgb[..., 1].astype(np.uint32) * 587
    weighted += rgb[..., 2].astype(np.uint32) * 114
    return ((weighted + 500) // 1000).astype(np.uint8)


def read(source: ImageSource, spec: ImageInput, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file or PIL image as a network input array (see `to_array`).

    Raises:
        InputError: as `open_image`, and NS303 for a file whose pixels Pillow cannot convert.
    """
    if isinstance(source, Image.Image):
        return to_array(source, spec, max_pixels)
    image = open_image(source, max_pixels)
    try:
        return to_array(image, spec, max_pixels)
    except InputError as err:
        raise InputError([problem.located(str(source), None, None) for problem in err.problems]) from None
    except MemoryError:  # not the file's fault: said as what it is
        raise
    except Exception as err:  # noqa: BLE001 - damaged files reach Pillow's converters too; one must not stop a run
        reason = str(err) or type(err).__name__
        raise InputError(Problem("NS303", f"image is truncated or corrupt ({reason})", file=str(source))) from None


_ORIENTATION_SOURCES = {"exif", "Raw profile type exif", "xmp", "XML:com.adobe.xmp"}
"""Where Pillow finds an orientation besides a TIFF's own tags (the raw profile is ImageMagick's, in PNGs)."""


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1: as stored); an EXIF block that cannot be read counts as 1, as browsers do."""
    if image.format != "TIFF" and not image.info.keys() & _ORIENTATION_SOURCES:
        return 1  # nothing to read (most PNGs, pictures made in code): no need to silence Pillow
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of corrupt EXIF data; the image still reads
            return image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - Pillow raises SyntaxError and others for malformed EXIF
        return 1


def _to_8bit(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I"):
        # 16-bit grey: scale the full range down instead of clipping at 255 (in Pillow, without
        # a float copy of the whole image).
        return image.convert("I").point(lambda v: v / 257 + 0.5).convert("L")
    if image.mode == "F":
        values = np.asarray(image)
        if np.isnan(values).any():  # NaN has no grey level (NumPy's cast makes it 0 or anything, silently)
            count = int(np.isnan(values).sum())
            message = f"image is truncated or corrupt ({count:,} of its float pixels are NaN, which has no grey level)"
            raise InputError(Problem("NS303", message))
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if image.mode in ("La", "RGBa"):  # premultiplied alpha: undo it before compositing
        return image.convert(image.mode.upper())
    return image.convert("RGBA" if "A" in image.mode else "RGB")


def _drop_alpha(image: Image.Image) -> Image.Image:
    if image.mode not in ("LA", "RGBA"):
        return image
    black = Image.new("RGBA", image.size, (0, 0, 0, 255))
    flat = Image.alpha_composite(black, image.convert("RGBA"))
    return flat.convert("RGB" if image.mode == "RGBA" else "L")
