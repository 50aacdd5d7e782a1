"""Image preprocessing: size, channel order, scaling, colour rules, and errors for bad files."""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from netspec import images
from netspec.errors import InputError
from netspec.inputs import ImageInput


def spec(**kwargs) -> ImageInput:
    return ImageInput.model_validate({"width": 2, "height": 1, **kwargs})


def save(tmp_path, image: Image.Image, name: str = "x.png", **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def two_pixels() -> Image.Image:
    image = Image.new("RGB", (2, 1))
    image.putpixel((0, 0), (255, 0, 0))
    image.putpixel((1, 0), (0, 51, 255))
    return image


def test_channels_first_and_scaled(tmp_path):
    x = images.read(save(tmp_path, two_pixels()), spec())
    assert x.shape == (3, 1, 2)
    np.testing.assert_allclose(x[:, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(x[:, 0, 1], [0, 0.2, 1])


def test_scale_then_mean_and_std(tmp_path):
    path = save(tmp_path, two_pixels())
    x = images.read(path, spec(scale=[-1, 1]))
    np.testing.assert_allclose(x[:, 0, 1], [-1, -0.6, 1])
    x = images.read(path, spec(mean=[0.5, 0.25, 0.0], std=[0.5, 0.25, 2.0]))
    np.testing.assert_allclose(x[:, 0, 0], [(1 - 0.5) / 0.5, (0 - 0.25) / 0.25, (0 - 0.0) / 2.0])


def test_resized_to_the_spec_size(tmp_path):
    path = save(tmp_path, Image.new("RGB", (40, 30), (10, 20, 30)))
    x = images.read(path, spec(width=4, height=3))
    assert x.shape == (3, 3, 4)
    np.testing.assert_allclose(x[:, 1, 2] * 255, [10, 20, 30])


def test_grayscale_uses_luma(tmp_path):
    x = images.read(save(tmp_path, two_pixels()), spec(color="grayscale"))
    assert x.shape == (1, 1, 2)
    # L = 0.299 R + 0.587 G + 0.114 B, rounded to a whole pixel value: 76.245 → 76, 59.007 → 59.
    np.testing.assert_allclose(x[0, 0] * 255, [76, 59], atol=1e-9)


def exact_luma(r: int, g: int, b: int) -> int:
    """The documented rule in exact rational arithmetic: the luma rounded to nearest, a half up."""
    value = Fraction(299, 1000) * r + Fraction(587, 1000) * g + Fraction(114, 1000) * b
    return math.floor(value + Fraction(1, 2))


def all_colours() -> np.ndarray:
    """Every 8-bit RGB colour, shaped (4096, 4096, 3): a picture of all 16.7 million of them."""
    levels = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return np.stack([r, g, b], axis=-1).reshape(4096, 4096, 3)


def test_luma_of_every_colour_is_the_documented_rounding():
    # An independent computation in floating point agrees except where the exact luma is (within
    # float error) a half: those, and every colour whose luma is within 1e-9 of a half, are decided
    # by exact rational arithmetic. Sixteen reds at a time, to keep the memory to some 100 MB.
    edges, edge_greys = [], []
    for red in range(0, 256, 16):
        colours = all_colours()[red * 16 : (red + 16) * 16]  # rows of 16 reds' colours
        grey = images.luma(colours).astype(np.int64)
        rgb = colours.astype(np.float64)
        floating = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        near_half = np.abs(floating - np.floor(floating) - 0.5) < 1e-9
        assert not (grey != np.floor(floating + 0.5))[~near_half].any()
        edges += colours[near_half].tolist()
        edge_greys += grey[near_half].tolist()
    assert len(edges) == 16_782  # 299 R + 587 G + 114 B ≡ 500 (mod 1000): the exact halves
    assert edge_greys == [exact_luma(*c) for c in edges]
    # The halves go up (165.5 → 166), and the colour the issue names rounds down.
    assert exact_luma(77, 240, 14) == 165 and int(images.luma(np.array([77, 240, 14], np.uint8))) == 165
    assert int(images.luma(np.array([1, 0, 3], np.uint8))) == exact_luma(1, 0, 3) == 1  # 0.641 → 1


def test_grayscale_pictures_follow_the_rule_on_every_colour(tmp_path):
    # Through the whole reading path (a PNG file, no resize): Pillow's convert("L") is one level off
    # on 9,040 of these colours, e.g. (77, 240, 14) → 166.
    colours = all_colours()
    path = save(tmp_path, Image.fromarray(colours, "RGB"), "all.png", compress_level=1)
    x = images.read(path, spec(width=4096, height=4096, color="grayscale", scale=[0, 255]))
    np.testing.assert_array_equal(x[0], images.luma(colours))
    assert x[0][77 * 16 + 240 // 16, (240 % 16) * 256 + 14] == 165


def test_alpha_is_composited_over_black(tmp_path):
    image = Image.new("RGBA", (2, 1), (200, 100, 50, 128))
    image.putpixel((1, 0), (200, 100, 50, 0))
    x = images.read(save(tmp_path, image), spec()) * 255
    np.testing.assert_allclose(x[:, 0, 0], [200 * 128 / 255, 100 * 128 / 255, 50 * 128 / 255], atol=1)
    np.testing.assert_allclose(x[:, 0, 1], [0, 0, 0])


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    path = save(tmp_path, image, transparency=1)
    x = images.read(path, spec())
    np.testing.assert_allclose(x[:, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(x[:, 0, 1], [0, 0, 0])  # the transparent index is black


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    image = Image.fromarray(np.array([[65535, 32896]], dtype=np.uint16))
    x = images.read(save(tmp_path, image), spec(color="grayscale"))
    np.testing.assert_allclose(x[0, 0], [1.0, 128 / 255])  # 32896 / 257 = 128


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "photo.tiff", "photo.webp", "imagemagick.png"])
def test_exif_orientation_is_applied(tmp_path, name):
    from PIL import PngImagePlugin

    stored = Image.new("RGB", (16, 8), (255, 0, 0))
    stored.paste((0, 0, 255), (8, 0, 16, 8))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to show
    if name == "imagemagick.png":  # ImageMagick writes EXIF into a PNG as a hex text chunk
        data = exif.tobytes()
        text = PngImagePlugin.PngInfo()
        text.add_text("Raw profile type exif", f"\nexif\n{len(data):8}\n{data.hex()}\n")
        path = save(tmp_path, stored, name, pnginfo=text)
    else:
        path = save(tmp_path, stored, name, exif=exif, quality=95)
    x = images.read(path, spec(width=8, height=16))
    assert x[0, :8].mean() > 0.9 and x[2, :8].mean() < 0.1  # red on top
    assert x[2, 8:].mean() > 0.9 and x[0, 8:].mean() < 0.1  # blue below


def test_animated_images_give_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (2, 1), (255, 0, 0)), Image.new("RGB", (2, 1), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    np.testing.assert_allclose(images.read(path, spec())[:, 0, 0], [1, 0, 0])


def test_pil_images_are_accepted():
    np.testing.assert_allclose(images.read(two_pixels(), spec())[:, 0, 0], [1, 0, 0])


def error_of(path, **kwargs) -> str:
    with pytest.raises(InputError) as caught:
        images.read(path, spec(), **kwargs)
    return str(caught.value)


def test_missing_file(tmp_path):
    assert error_of(tmp_path / "none.png") == f"{tmp_path / 'none.png'}: NS301 image not found"


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    assert error_of(path) == f"{path}: NS302 not an image netspec reads (PNG, JPEG, BMP, GIF, TIFF, WEBP)"


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert error_of(path) == f"{path}: NS302 the file is empty; give an image"


def test_unsupported_format_is_refused(tmp_path):
    path = save(tmp_path, two_pixels(), "icon.ico")
    assert "NS302 not an image netspec reads" in error_of(path)


def test_truncated_image(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert error_of(path).startswith(f"{path}: NS303 image is truncated or corrupt")


@pytest.mark.parametrize("kind, suffix", [("PNG", "png"), ("GIF", "gif"), ("TIFF", "tif")])  # JPEG opens, then fails
def test_an_image_cut_inside_its_header_is_truncated_not_unknown(tmp_path, kind, suffix):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, kind)
    path = tmp_path / f"cut.{suffix}"
    path.write_bytes(buffer.getvalue()[:12])  # the signature and a little more: too little for Pillow to open
    assert error_of(path) == (
        f"{path}: NS303 image is truncated or corrupt (it begins as a {kind} file, but its header cannot be read)"
    )


def test_malformed_exif_is_read_as_no_orientation_and_says_nothing(tmp_path):
    import warnings

    image = Image.new("RGB", (2, 1), (255, 0, 0))
    image.putpixel((1, 0), (0, 0, 255))
    for name, exif in [
        ("garbage.png", b"garbage-exif-data-here"),
        ("short.png", b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05"),
    ]:
        path = tmp_path / name
        image.save(path, exif=exif)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Pillow's "Corrupt EXIF data" must not reach the user
            array = images.read(path, spec())
        np.testing.assert_array_equal(array[:, 0, :], [[1, 0], [0, 0], [0, 1]])  # as stored: red, then blue


def test_an_image_pillow_cannot_convert_is_one_located_error(tmp_path, monkeypatch):
    path = save(tmp_path, two_pixels())

    def broken(*args):
        raise ValueError("decoder lost its way")

    monkeypatch.setattr(images, "_drop_alpha", broken)
    assert error_of(path) == f"{path}: NS303 image is truncated or corrupt (decoder lost its way)"


def test_folders_symlink_loops_and_nul_names_are_one_located_error(tmp_path):
    (tmp_path / "album.png").mkdir()
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    assert error_of(tmp_path / "album.png") == f"{tmp_path / 'album.png'}: NS302 is a folder, not an image file"
    assert error_of(tmp_path / "loop.png") == (
        f"{tmp_path / 'loop.png'}: NS302 cannot read the file: Too many levels of symbolic links"
    )
    assert error_of("a\x00b.png") == "a\x00b.png: NS302 the file name holds a NUL character"


def feed(pipe, data: bytes):
    """Write `data` into a named pipe from another thread (a reader that stops early is no error)."""
    import threading

    def write():
        try:
            pipe.write_bytes(data)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


def test_a_pipe_given_by_name_is_read_as_cat_reads_it(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    writer = feed(tmp_path / "pipe", save(tmp_path, two_pixels()).read_bytes())
    np.testing.assert_allclose(images.read(tmp_path / "pipe", spec())[:, 0, 0], [1, 0, 0])
    writer.join(timeout=10)


def test_a_pipe_is_read_no_further_than_the_largest_allowed_image(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    header = save(tmp_path, Image.new("L", (10, 10))).read_bytes()
    writer = feed(tmp_path / "pipe", header + bytes(2 * 2**20))  # an endless stream, as far as netspec knows
    limit = 5 * images.BYTES_PER_PIXEL_AT_MOST + 2**20
    assert error_of(tmp_path / "pipe", max_pixels=5) == (
        f"{tmp_path / 'pipe'}: NS304 more than {limit:,} bytes came through the pipe, more than an image of 5 pixels "
        "takes; raise the limit with --max-pixels N if the image is that large"
    )
    writer.join(timeout=10)


def test_devices_are_refused_before_reading():
    assert error_of("/dev/zero") == (
        "/dev/zero: NS302 is a device (a terminal, say), not an image file; give a file, or pipe an image in"
    )


def test_too_many_pixels_is_refused_before_decoding(tmp_path):
    path = save(tmp_path, Image.new("L", (100, 100)))
    assert error_of(path, max_pixels=5000) == (
        f"{path}: NS304 image is 100×100 pixels, more than the limit of 5,000; "
        "scale it down, or raise the limit with --max-pixels 10000 if you trust the file"
    )


def test_an_image_past_pillows_own_limit_says_that_max_pixels_cannot_help(tmp_path):
    # A PNG whose header claims 20,000 × 20,000 pixels: Pillow refuses it as it opens, whatever netspec allows.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "claims.png"
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    assert error_of(path, max_pixels=10**9) == (
        f"{path}: NS304 image has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, which Pillow refuses as a "
        "decompression bomb whatever --max-pixels allows; scale it down"
    )


def test_premultiplied_and_other_modes(tmp_path):
    for mode in ("La", "RGBa", "PA", "CMYK", "YCbCr", "1", "F", "I;16"):
        assert images.to_array(Image.new(mode, (2, 1)), spec()).shape == (3, 1, 2), mode


def test_empty_image_is_refused():
    with pytest.raises(InputError, match="NS302 image has no pixels"):
        images.to_array(Image.new("RGB", (0, 0)), spec())


def test_animated_file_is_closed_after_reading(tmp_path):
    import gc
    import warnings

    frames = [Image.new("RGB", (2, 1), (255, 0, 0)), Image.new("RGB", (2, 1), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        images.read(path, spec())
        gc.collect()
