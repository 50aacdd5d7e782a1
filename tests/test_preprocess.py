"""Images read as torchvision's ImageNet transforms read them (resize, crop), and class labels from a file."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import netspec
from netspec import images
from netspec.cli import main
from netspec.errors import SpecError
from netspec.inputs import ImageInput
from netspec.labels import read_labels
from netspec.spec import Spec

ROOT = Path(__file__).resolve().parent.parent
IMAGENET_CLASSES = ROOT / "specs" / "zoo" / "imagenet-classes.txt"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def torchvision_transforms():
    """torchvision.transforms, imported as benchmarks/ imports torchvision (one schema definition a process)."""
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (pip install -e '.[test]')")
    if "torchvision" not in sys.modules:
        from benchmarks.model_graphs import torchvision_module

        torchvision_module()
    from torchvision import transforms

    return transforms


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A made-up photo: smooth colour gradients (what resizing must keep) under fine noise (what it must blur)."""
    rng = np.random.default_rng([seed, width, height])
    y, x = np.mgrid[0:height, 0:width]
    smooth = np.stack([127 + 120 * np.sin(x / 17 + k) * np.cos(y / 23 - k) for k in range(3)], axis=-1)
    pixels = np.clip(smooth + rng.normal(0, 40, smooth.shape), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def image_input(**given) -> ImageInput:
    return ImageInput.model_validate({"width": 224, "height": 224, "mean": MEAN, "std": STD, **given})


def in_mode(image: Image.Image, mode: str) -> tuple[Image.Image, Image.Image]:
    """The photo in `mode`, and what torchvision is given for it: the RGB picture netspec's colour rules make."""
    if mode == "RGB":
        return image, image
    if mode == "L":
        grey = image.convert("L")
        return grey, grey.convert("RGB")
    if mode == "P":
        palette = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        return palette, palette.convert("RGB")
    alpha = Image.fromarray(
        np.linspace(0, 255, image.width * image.height).reshape(image.height, image.width).astype(np.uint8)
    )
    rgba = image.copy()
    rgba.putalpha(alpha)
    # netspec's rule 5: transparent pixels over black (PIL's convert("RGB") would drop the alpha instead).
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return rgba, Image.alpha_composite(black, rgba).convert("RGB")


PHOTOS = [
    pytest.param(500, 375, "RGB", id="landscape-500x375"),
    pytest.param(375, 500, "RGB", id="portrait-375x500"),
    pytest.param(301, 257, "RGB", id="odd-301x257"),  # 256 × 299.8 → 299 wide; (299 - 224) / 2 = 37.5 → 38
    pytest.param(257, 301, "L", id="grayscale-file-257x301"),
    pytest.param(333, 480, "RGBA", id="rgba-333x480"),
    pytest.param(640, 427, "P", id="palette-640x427"),
    pytest.param(150, 100, "RGB", id="smaller-than-256-150x100"),
    pytest.param(256, 256, "RGB", id="square-256"),
]


@pytest.mark.parametrize(("width", "height", "mode"), PHOTOS)
def test_resize_256_crop_224_is_torchvisions_imagenet_transform(tmp_path, width, height, mode):
    T = torchvision_transforms()
    given, reference = in_mode(photo(width, height), mode)
    path = tmp_path / "photo.png"
    given.save(path)
    x = images.read(path, image_input(resize=256, crop=224))
    expected = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])(reference)
    assert x.shape == (3, 224, 224)
    np.testing.assert_allclose(x, expected.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("width", "height", "mode"), PHOTOS[:3])
def test_bicubic_resize_is_torchvisions_bicubic_resize(tmp_path, width, height, mode):
    """EfficientNet's evaluation resizes bicubic; bilinear would differ by up to 0.19 after normalising."""
    T = torchvision_transforms()
    given, reference = in_mode(photo(width, height), mode)
    path = tmp_path / "photo.png"
    given.save(path)
    x = images.read(path, image_input(resize=256, crop=224, interpolation="bicubic"))
    bicubic = T.InterpolationMode.BICUBIC
    expected = T.Compose([T.Resize(256, bicubic), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])(reference)
    np.testing.assert_allclose(x, expected.numpy(), rtol=0, atol=1e-6)
    bilinear = images.read(path, image_input(resize=256, crop=224))
    assert np.abs(bilinear - x).max() > 1e-2  # the option changes what is read


@pytest.mark.parametrize(
    ("size", "resize", "crop"),
    [
        ((150, 100), None, 224),  # smaller both ways: black on every side, one pixel more after than before
        ((300, 90), None, [120, 225]),  # taller crop than the image, narrower than it
        ((97, 203), 200, 224),  # resized to 200 × 418, then padded across
        ((301, 257), 255, [223, 225]),  # odd sizes: the corner rounds a half to even
    ],
)
def test_crops_larger_than_the_image_are_padded_black_as_torchvision_pads(size, resize, crop):
    T = torchvision_transforms()
    image = photo(*size)
    height, width = (crop, crop) if isinstance(crop, int) else crop
    spec = ImageInput.model_validate({"width": width, "height": height, "resize": resize, "crop": crop})
    steps = ([T.Resize(resize)] if resize else []) + [T.CenterCrop(crop), T.ToTensor()]
    np.testing.assert_allclose(images.to_array(image, spec), T.Compose(steps)(image).numpy(), rtol=0, atol=1e-6)


def test_a_grayscale_spec_resizes_and_crops_the_luma(tmp_path):
    T = torchvision_transforms()
    image = photo(320, 241)
    spec = image_input(color="grayscale", resize=64, crop=[48, 56], width=56, height=48, mean=[0.5], std=[0.25])
    grey = Image.fromarray(images.luma(np.asarray(image)), "L")  # rule 6, then torchvision's steps
    expected = T.Compose([T.Resize(64), T.CenterCrop([48, 56]), T.ToTensor(), T.Normalize([0.5], [0.25])])(grey)
    np.testing.assert_allclose(images.to_array(image, spec), expected.numpy(), rtol=0, atol=1e-6)


def test_the_size_arithmetic_is_torchvisions_for_every_size():
    T = torchvision_transforms()
    from torchvision.transforms import functional as F

    for side in range(1, 400):
        for shorter in (1, 7, 224, 256):
            height, width = F._compute_resized_output_size((side, 97), [shorter])
            assert images.resized_size((97, side), shorter) == (width, height), (side, shorter)
    for size in range(1, 300):
        row = (np.arange(size) % 250 + 1).astype(np.uint8)  # no pixel is 0, the black of padding
        for crop in (1, 2, 3, 100, 223, 224, 225):
            # One row, cut or padded along its width only: torchvision's own result, pixel by pixel.
            cut = np.asarray(T.CenterCrop([1, crop])(Image.fromarray(row[None], "L")))[0]
            start = images.centered(size, crop)
            ours = [row[i] if 0 <= i < size else 0 for i in range(start, start + crop)]
            assert cut.tolist() == ours, (size, crop)


def test_a_resize_past_the_pixel_limit_is_refused_before_it_is_made(tmp_path):
    strip = tmp_path / "strip.png"
    Image.new("RGB", (4000, 1), (9, 9, 9)).save(strip)
    with pytest.raises(netspec.InputError) as caught:
        images.read(strip, image_input(resize=256, crop=224))
    assert str(caught.value) == (
        f"{strip}: NS304 image is 4000×1 pixels: resizing its shorter side to 256 makes it 1024000×256, more than "
        "the limit of 64,000,000; crop it nearer to a square, or raise the limit with --max-pixels 262144000 if "
        "you trust the file"
    )
    assert images.read(strip, image_input(resize=256, crop=224), max_pixels=262_144_000).shape == (3, 224, 224)


def test_without_resize_or_crop_images_are_resized_to_width_by_height_as_before():
    image = photo(40, 30)
    x = images.to_array(image, ImageInput.model_validate({"width": 16, "height": 12}))
    expected = np.asarray(image.resize((16, 12), Image.Resampling.BILINEAR), dtype=np.float64) / 255
    np.testing.assert_allclose(x, expected.transpose(2, 0, 1), rtol=0, atol=1e-12)


def test_crop_alone_cuts_the_middle_without_resizing():
    image = photo(40, 30)
    x = images.to_array(image, ImageInput.model_validate({"width": 20, "height": 10, "crop": [10, 20]}))
    expected = np.asarray(image, dtype=np.float64)[10:20, 10:30] / 255
    np.testing.assert_allclose(x, expected.transpose(2, 0, 1), rtol=0, atol=1e-12)


SPEC = """\
netspec: 1
classes: {file: labels.txt}
input:
  image: {width: 8, height: 6, resize: 9, crop: [6, 8], mean: [0.5, 0.4, 0.3], std: [0.2, 0.3, 0.4]}
layers:
  - {name: output, type: dense, neurons: 2, activation: softmax}
"""


def invoke(*args) -> object:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture
def spec_and_photo(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "labels.txt").write_text("rose\nlotus\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    path = tmp_path / "photo.png"
    photo(37, 23).save(path)
    return spec, path


def test_run_eval_train_explain_and_the_api_read_a_file_into_the_same_array(spec_and_photo, monkeypatch, tmp_path):
    spec, path = spec_and_photo
    for label in ("rose", "lotus"):
        (tmp_path / "data" / label).mkdir(parents=True)
        shutil.copy(path, tmp_path / "data" / label / "photo.png")
    made: dict[str, list[np.ndarray]] = {}
    step = ["api"]
    to_array = images.to_array

    def recording(image, image_spec, *limit):
        array = to_array(image, image_spec, *limit)
        made.setdefault(step[0], []).append(array)
        return array

    monkeypatch.setattr(images, "to_array", recording)
    api = netspec.load(spec).inputs(path)[0]
    for step[0], args in [
        ("run", ["run", spec, path]),
        ("explain", ["run", spec, path, "--explain", tmp_path / "why.png"]),
        ("eval", ["eval", spec, tmp_path / "data"]),
        ("train", ["train", spec, tmp_path / "data", "-o", tmp_path / "trained.yaml", "--epochs", "1", "--quiet"]),
    ]:
        assert invoke(*args).exit_code == 0, step[0]
    assert {name: len(arrays) for name, arrays in made.items()} == {
        "api": 1,
        "run": 1,
        "explain": 2,  # classified, then explained
        "eval": 2,
        "train": 2,
    }
    # By hand: 37 × 23 resized to 14 × 9 (int(9 · 37 / 23) = 14), the middle 8 × 6 from (3, 2), then normalised.
    resized = np.asarray(photo(37, 23).resize((14, 9), Image.Resampling.BILINEAR), dtype=np.float64)[2:8, 3:11] / 255
    expected = (resized - [0.5, 0.4, 0.3]) / [0.2, 0.3, 0.4]
    np.testing.assert_allclose(api, expected.transpose(2, 0, 1).astype(np.float32), rtol=1e-6)
    for name, arrays in made.items():
        for array in arrays:
            np.testing.assert_array_equal(array, made["api"][0], err_msg=name)


def located(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "spec.yaml").write_text(text)
    with pytest.raises(SpecError) as caught:
        netspec.load(tmp_path / "spec.yaml")
    return [str(problem).replace(f"{tmp_path}/", "") for problem in caught.value.problems]


def test_width_and_height_must_be_the_crops_with_the_fix_said(tmp_path):
    (tmp_path / "labels.txt").write_text("rose\nlotus\n")
    text = SPEC.replace("width: 8, height: 6", "width: 224, height: 6")
    assert located(tmp_path, text) == [
        "spec.yaml:4:18: NS104 input.image.width: is 224, but crop: [6, 8] makes the network's input 8 wide and "
        "6 high; the network reads the cropped image: write width: 8, or change crop"
    ]
    text = SPEC.replace("width: 8, height: 6", "width: 6, height: 8")
    assert [line[:38] for line in located(tmp_path, text)] == [
        "spec.yaml:4:18: NS104 input.image.widt",
        "spec.yaml:4:29: NS104 input.image.heig",
    ]


def test_resize_without_crop_is_refused_at_resize(tmp_path):
    (tmp_path / "labels.txt").write_text("rose\nlotus\n")
    assert located(tmp_path, SPEC.replace(", crop: [6, 8]", "")) == [
        "spec.yaml:4:40: NS102 input.image.resize: resizes the shorter side to 9 keeping each image's aspect "
        "ratio, so images would come out in many sizes; add crop: N (or [height, width]) to cut the network's "
        "input from the middle, as torchvision's Resize then CenterCrop do"
    ]


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        ("[6, 8, 1]", "NS108 input.image.crop: must have at most 2 items, got 3"),
        ("0", "NS104 input.image.crop: must be at least 1, got 0"),
        ("six", "NS103 input.image.crop: must be a whole number, got 'six' (text)"),
    ],
)
def test_a_crop_of_the_wrong_form_is_located(tmp_path, crop, message):
    (tmp_path / "labels.txt").write_text("rose\nlotus\n")
    problems = located(tmp_path, SPEC.replace("crop: [6, 8]", f"crop: {crop}"))
    assert any(line.startswith("spec.yaml:4:") and message in line for line in problems), problems


def test_every_reader_of_classes_sees_the_files_labels(spec_and_photo, tmp_path):
    spec, path = spec_and_photo
    network = netspec.load(spec)
    assert network.classes == ["rose", "lotus"] and network.spec.classes_file == "labels.txt"
    scores = json.loads(invoke("run", spec, path, "--json").output)["scores"]
    assert list(scores) in (["rose", "lotus"], ["lotus", "rose"])
    assert "rose, lotus" in invoke("summary", spec).output
    onnx = pytest.importorskip("onnx")
    invoke("export", spec, "-o", tmp_path / "model.onnx")
    metadata = {p.key: p.value for p in onnx.load(tmp_path / "model.onnx").metadata_props}
    assert json.loads(metadata["netspec.classes"]) == ["rose", "lotus"]
    assert json.loads(metadata["netspec.input"])["image"]["crop"] == [6, 8]
    invoke("import", tmp_path / "model.onnx", "-o", tmp_path / "back.yaml")
    back = netspec.load(tmp_path / "back.yaml")
    assert back.classes == ["rose", "lotus"] and back.spec.input.image == network.spec.input.image


def test_an_imported_model_is_given_resize_and_crop_in_python(spec_and_photo, tmp_path):
    pytest.importorskip("onnx")
    from netspec.interop.importer import import_model

    spec, _ = spec_and_photo
    plain = tmp_path / "plain.yaml"
    plain.write_text(SPEC.replace(", resize: 9, crop: [6, 8]", ""))
    assert invoke("export", plain, "-o", tmp_path / "plain.onnx").exit_code == 0
    import_model(tmp_path / "plain.onnx", tmp_path / "cropped.yaml", image={"resize": 9, "crop": [6, 8]})
    assert netspec.load(tmp_path / "cropped.yaml").spec.input.image == netspec.load(spec).spec.input.image
    with pytest.raises(SpecError, match=r"NS104 input.image.width: is 8, but crop: 6 makes"):
        import_model(tmp_path / "plain.onnx", tmp_path / "bad.yaml", image={"resize": 9, "crop": 6})


def test_the_python_api_reads_a_classes_file_from_the_folder_it_is_given(tmp_path, monkeypatch):
    (tmp_path / "labels.txt").write_text("rose\nlotus\n")
    data = {
        "netspec": 1,
        "classes": {"file": "labels.txt"},
        "input": {"features": 2},
        "layers": [{"type": "dense", "neurons": 2}],
    }
    assert Spec.model_validate(data, context={"base_dir": tmp_path}).classes == ["rose", "lotus"]
    monkeypatch.chdir(tmp_path)  # without a folder, the current one: as build() reads weight files
    assert Spec.model_validate(data).classes == ["rose", "lotus"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("none.txt", None, ["spec.yaml:2:17: NS202 classes.file: classes file 'none.txt' not found in {tmp}"]),
        (
            "../labels.txt",
            None,
            [
                "spec.yaml:2:17: NS207 classes.file: '../labels.txt' leads outside the spec's folder ({tmp}); "
                "keep the classes file beside the spec"
            ],
        ),
        (
            "/etc/hostname",
            None,
            [
                "spec.yaml:2:17: NS207 classes.file: '/etc/hostname' is an absolute path; copy hostname into the spec's folder ({tmp}) "
                "and write 'hostname'"
            ],
        ),
        (
            "sub",
            "folder",
            ["spec.yaml:2:17: NS203 classes.file: 'sub' is a folder; give a text file of labels, one a line"],
        ),
        ("empty.txt", "\n\n", ["empty.txt: NS109 the file holds no labels; write one class label a line"]),
        (
            "twice.txt",
            "rose\nlotus \n\nrose\r\n",
            [
                "twice.txt:3:1: NS109 the label is empty; give every class a label",
                "twice.txt:4:1: NS122 the label 'rose' is listed twice (also line 1); keep one",
            ],
        ),
        ("latin1.txt", b"ros\xe9\n", ["latin1.txt: NS103 the labels are not UTF-8 text (byte 0xe9 at offset 3)"]),
        (
            "huge.txt",
            b"a\n" * (8 * 2**20 + 1),
            [
                "huge.txt: NS103 the file holds more than 16,777,216 bytes, more than any list of labels; give a labels file"
            ],
        ),
        (
            "pipe",
            "fifo",
            [
                "spec.yaml:2:17: NS203 classes.file: 'pipe' is not a plain file (a pipe or a device); give a text file of labels, "
                "one a line"
            ],
        ),
    ],
)
def test_a_bad_classes_file_is_refused_located(tmp_path, name, content, expected):
    work = tmp_path / "work"
    work.mkdir()
    if content == "folder":
        (work / name).mkdir()
    elif content == "fifo":
        os.mkfifo(work / name)  # reading it would wait for a writer that never comes
    elif isinstance(content, bytes):
        (work / name).write_bytes(content)
    elif content is not None:
        (work / name).write_text(content)
    (tmp_path / "labels.txt").write_text("rose\nlotus\n")  # outside the spec's folder: never read
    problems = located(work, SPEC.replace("labels.txt", name))
    assert problems == [line.format(tmp=work.resolve()) for line in expected]


def test_labels_are_stripped_trailing_blank_lines_ignored_and_lines_split_only_at_newlines(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeff rose \r\nlotus\t\nwater\u2028lily\n\n\n".encode())
    with pytest.raises(SpecError) as caught:
        read_labels(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:3:1: NS103 the label 'water\\u2028lily' holds a tab or other control character; labels are "
        "printable text"
    ]
    path.write_bytes("\ufeff rose \r\nlotus\t\n\n\n".encode())
    assert read_labels(path) == ["rose", "lotus"]


def test_a_labels_count_other_than_the_outputs_is_said_at_the_output_layer(tmp_path):
    (tmp_path / "labels.txt").write_text("rose\nlotus\nlily\n")
    assert located(tmp_path, SPEC) == [
        "spec.yaml:6:42: NS123 layers[0].neurons: the output layer has 2 neurons but there are 3 classes; "
        "give the last layer one neuron per class"
    ]


def test_a_trained_spec_keeps_its_classes_file_beside_it_and_inlines_the_labels_elsewhere(spec_and_photo, tmp_path):
    spec, path = spec_and_photo
    for label in ("rose", "lotus"):
        (tmp_path / "data" / label).mkdir(parents=True)
        shutil.copy(path, tmp_path / "data" / label)
    beside, elsewhere = tmp_path / "trained.yaml", tmp_path / "out" / "trained.yaml"
    for out in (beside, elsewhere):
        assert invoke("train", spec, tmp_path / "data", "-o", out, "--epochs", "1", "--quiet").exit_code == 0
    assert "classes: {file: labels.txt}\n" in beside.read_text()
    assert "classes: [rose, lotus]\n" in elsewhere.read_text() and "input:\n  image:" in elsewhere.read_text()
    assert netspec.load(elsewhere).classes == netspec.load(beside).classes == ["rose", "lotus"]


def test_no_output_may_replace_the_classes_file(spec_and_photo, tmp_path):
    spec, path = spec_and_photo
    (tmp_path / "labels.png").write_text("rose\nlotus\n")  # a name a picture could be written to
    spec.write_text(SPEC.replace("labels.txt", "labels.png"))
    result = invoke("run", spec, path, "--explain", tmp_path / "labels.png")
    assert result.exit_code == 2 and "--explain" in result.stderr and str(tmp_path / "labels.png") in result.stderr
    assert (tmp_path / "labels.png").read_text() == "rose\nlotus\n"


def test_the_imagenet_labels_are_torchvisions_in_its_order():
    labels = read_labels(IMAGENET_CLASSES)
    assert len(labels) == len(set(labels)) == 1000
    assert (labels[0], labels[134], labels[517], labels[638], labels[639], labels[999]) == (
        "tench",
        "crane bird",
        "crane",
        "maillot",
        "maillot tank suit",
        "toilet tissue",
    )
    assert IMAGENET_CLASSES.read_text(encoding="utf-8") == "".join(f"{label}\n" for label in labels)
    torchvision_transforms()
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    assert labels == list(_IMAGENET_CATEGORIES)
