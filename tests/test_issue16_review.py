"""Issue 16 under hostile input: blocks, safetensors weight files, `netspec convert`, as a user or an attacker writes them.

Each test is a finding of the adversarial review: it fails without its fix.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main

from conftest import where

DENSE = """\
netspec: 1
classes: [a, b]
input: {features: 3}
weights_file: net.safetensors
layers:
  - {name: fc, type: dense, neurons: 2, activation: softmax}
"""


def _safetensors(header: bytes | dict, data: bytes = b"") -> bytes:
    """A .safetensors file's bytes with `header` as written (not checked, not padded)."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_a_header_nested_thousands_deep_is_a_problem_not_a_crash(problems, tmp_path):
    # json's decoder recurses once per [ : 100,000 of them overflowed Python's stack (RecursionError).
    deep = b'{"fc.weights": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    (tmp_path / "net.safetensors").write_bytes(_safetensors(deep))
    assert problems(DENSE) == [
        f"{where(DENSE, 'net.safetensors')}: NS203 weights_file: the header of net.safetensors nests lists or "
        "objects too deeply; is it a .safetensors file?"
    ]


def test_a_header_number_of_thousands_of_digits_is_said_without_python_advice(problems, tmp_path):
    # Python refuses to read an int of more than 4,300 digits with a ValueError that advises
    # sys.set_int_max_str_digits(): advice for a programmer, not for the file's user.
    header = b'{"fc.weights": {"dtype": "F32", "shape": [1' + b"0" * 5000 + b'], "data_offsets": [0, 24]}}'
    (tmp_path / "net.safetensors").write_bytes(_safetensors(header, bytes(24)))
    assert problems(DENSE) == [
        f"{where(DENSE, 'net.safetensors')}: NS203 weights_file: the header of net.safetensors holds a number "
        "too long to be a size; is it a .safetensors file?"
    ]


def test_a_header_not_utf8_says_so(problems, tmp_path):
    (tmp_path / "net.safetensors").write_bytes(_safetensors(b'{"\xff": 1}'))
    assert problems(DENSE) == [
        f"{where(DENSE, 'net.safetensors')}: NS203 weights_file: the header of net.safetensors is not UTF-8 text "
        "(invalid start byte); is it a .safetensors file?"
    ]


def _ending_like_a_zip() -> tuple[bytes, np.ndarray, np.ndarray]:
    """A .safetensors file for DENSE whose last 22 bytes, fc's weights, are an empty zip's end record."""
    bias = np.array([0.5, -0.5], dtype=np.float32)
    weights_bytes = b"\0\0" + b"PK\x05\x06" + bytes(18)  # six finite float32 values (one is 1.36e7)
    header = {
        "fc.bias": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "fc.weights": {"dtype": "F32", "shape": [2, 3], "data_offsets": [8, 32]},
    }
    weights = np.frombuffer(weights_bytes, dtype="<f4").reshape(2, 3)
    return _safetensors(header, bias.tobytes() + weights_bytes), weights, bias


def test_a_safetensors_file_whose_values_end_like_a_zip_is_read_as_safetensors(write_spec, tmp_path):
    """zipfile.is_zipfile finds a zip's end record in the last bytes of any file: in a .safetensors file's
    values it made netspec read the file as a .npz holding no arrays, so every layer silently kept its
    initial values."""
    import zipfile

    data, weights, bias = _ending_like_a_zip()
    (tmp_path / "net.safetensors").write_bytes(data)
    assert zipfile.is_zipfile(tmp_path / "net.safetensors")  # what misled netspec
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    assert set(safetensors_numpy.load_file(tmp_path / "net.safetensors")) == {"fc.weights", "fc.bias"}  # valid
    network = netspec.load(write_spec(DENSE))
    x = np.array([[1e-7, 1.0, -1.0]])  # the 1.36e7 weight times 1e-7: no saturated softmax
    logits = x @ weights.astype(np.float64).T + bias
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert 0.05 < expected[0, 0] < 0.95
    np.testing.assert_allclose(network.forward(x), expected, rtol=1e-5)


def test_a_weight_file_that_is_a_pipe_is_not_called_a_folder(problems, tmp_path):
    os.mkfifo(tmp_path / "net.safetensors")
    assert problems(DENSE) == [
        f"{where(DENSE, 'net.safetensors')}: NS203 weights_file: 'net.safetensors' is not a plain file "
        "(a pipe or a device), not a .npz or .safetensors file"
    ]


def test_convert_refuses_a_tensor_named_as_the_formats_metadata(tmp_path):
    """The key __metadata__ holds text in a .safetensors header: written as a tensor, netspec's reader
    dropped it silently and the safetensors package refused the whole file."""
    torch = pytest.importorskip("torch")
    torch.save({"__metadata__": torch.zeros(2), "fc.weight": torch.ones(2, 3)}, tmp_path / "m.pth")
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "m.pth"), str(tmp_path / "m.safetensors")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"{tmp_path / 'm.pth'}: NS213 holds a tensor named '__metadata__', a name the .safetensors format keeps "
        "for its text metadata; rename the tensor before saving (it cannot be a module's parameter)\n"
    )
    assert not (tmp_path / "m.safetensors").exists()


# Blocks (netspec/blocks/ is not this review's to edit: the expected behaviour, for its owner) ----------------

BLOCK_NAMED_INPUT = """\
netspec: 1
classes: [a, b]
input: {features: 3}
blocks:
  b:
    layers:
      - {name: input, type: dense, neurons: 4}
      - {name: d, type: dense, neurons: 4}
layers:
  - {name: u, block: b}
  - {name: out, type: dense, neurons: 2, activation: softmax}
"""


def test_a_block_layer_named_input_is_refused(problems):
    assert problems(BLOCK_NAMED_INPUT) == [
        f"{where(BLOCK_NAMED_INPUT, '{name: input', 'input')}: NS121 blocks.b.layers[0].name: 'input' names what "
        "the block reads; give the layer another name"
    ]


FLAT_NAME_TAKEN = """\
netspec: 1
classes: [a, b]
input: {features: 3}
blocks:
  b:
    layers:
      - {name: c, type: dense, neurons: 4}
      - {name: d, type: dense, neurons: 4}
layers:
  - {name: c0, type: dense, neurons: 4}
  - {name: u, block: b, repeat: 2}
  - {name: u.1.d, type: dense, neurons: 4}
  - {name: out, type: dense, neurons: 2, activation: softmax}
"""


def test_a_layer_named_as_an_expanded_one_names_the_use(problems):
    found = problems(FLAT_NAME_TAKEN)
    assert len(found) == 1 and found[0].startswith(f"{where(FLAT_NAME_TAKEN, 'u.1.d')}: NS121 layers[2].name:")
    assert "layers[4]" not in found[0] and "layers[1]" in found[0]


def _npz_with_header(path, header: str) -> None:
    """A .npz whose fc.weights member has the .npy header `header` (a dict's text), then 24 bytes."""
    import zipfile

    text = header.encode()
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fc.weights.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + bytes(24))


NPZ = DENSE.replace("net.safetensors", "net.npz")


def test_a_npy_header_with_a_negative_size_is_damaged_not_a_shape_mismatch(problems, tmp_path):
    # numpy reads shape (-2, 3) from a header as it is: netspec said "has -2 rows but the layer has 2 neurons".
    _npz_with_header(tmp_path / "net.npz", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }")
    assert problems(NPZ) == [
        f"{where(NPZ, 'net.npz')}: NS203 weights_file: cannot read net.npz['fc.weights']: its header declares "
        "shape (-2, 3); sizes are whole numbers ≥ 0; write it with numpy.save or numpy.savez"
    ]


def test_a_damaged_npy_header_is_not_quoted_whole(problems, tmp_path):
    # numpy's message quotes the whole header, here 6,000 characters of brackets, in the one line.
    deep = "{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 3000 + ")" * 3000 + ", }"
    _npz_with_header(tmp_path / "net.npz", deep)
    (found,) = problems(NPZ)
    assert found.startswith(f"{where(NPZ, 'net.npz')}: NS203 weights_file: cannot read net.npz['fc.weights']: ")
    assert found.endswith("…; write it with numpy.save or numpy.savez") and len(found) < 400


# Images ------------------------------------------------------------------------------------------------------

NAN_SPEC = """\
netspec: 1
classes: [a, b]
input: {image: {width: 4, height: 4, color: grayscale, resize: 5, crop: 4}}
layers:
  - {type: flatten}
  - {type: dense, neurons: 2, activation: softmax}
"""


def test_a_float_image_with_nan_pixels_is_refused_not_read_as_some_grey(write_spec, tmp_path):
    """NumPy casts NaN to uint8 as whatever the CPU gives (0 here) with no word: a depth map with holes was
    classified as if the holes were black."""
    from PIL import Image

    pixels = np.full((10, 10), 100, dtype=np.float32)
    pixels[:3, :4] = np.nan
    Image.fromarray(pixels, "F").save(tmp_path / "depth.tif")
    spec = write_spec(NAN_SPEC)
    result = CliRunner().invoke(main, ["run", str(spec), str(tmp_path / "depth.tif")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"{tmp_path / 'depth.tif'}: NS303 image is truncated or corrupt (12 of its float pixels are NaN, "
        "which has no grey level)\n"
    )
    # Infinities are clipped as any value out of 0..255 is (the documented rule), and still read.
    pixels[:3, :4] = np.inf
    Image.fromarray(pixels, "F").save(tmp_path / "bright.tif")
    image = netspec.load(spec).inputs([tmp_path / "bright.tif"])[0, 0]
    assert image.shape == (4, 4)  # scale 0..1: 255 is 1, the rest 100 / 255
    np.testing.assert_allclose([image.max(), image.min()], [1.0, 100 / 255], rtol=1e-6)


def test_a_resize_no_image_can_take_is_said_of_the_spec_not_the_image(write_spec, tmp_path):
    """resize: 100000 in a spec gave 'crop it nearer to a square' for any photo, a square one too: the
    spec's number is what to change."""
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 10, 10)).save(tmp_path / "square.png")
    spec = write_spec(NAN_SPEC.replace("resize: 5", "resize: 100000"))
    result = CliRunner().invoke(main, ["run", str(spec), str(tmp_path / "square.png")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"{tmp_path / 'square.png'}: NS304 resize: 100000 makes every image at least 100000×100000 pixels, more "
        "than the limit of 64,000,000; lower resize in the spec (torchvision's ImageNet models use 256)\n"
    )


def test_a_state_dict_of_another_model_is_listed_to_a_bound(problems, tmp_path):
    """A language model's state dict given to a small spec: every one of its keys was listed (830 kB for
    20,000 keys) and each was compared with each missing one for "did you mean" (9 s)."""
    count = 1_500
    header = {
        f"h.{i}.attn.weight": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(count)
    }
    (tmp_path / "net.safetensors").write_bytes(_safetensors(header, bytes(4 * count)))
    spec = DENSE.replace("weights_file: net.safetensors", "weights_file: {file: net.safetensors, names: pytorch}")
    (found,) = problems(spec)
    head = (
        f"{where(spec, '{file: net')}: NS211 weights_file: net.safetensors does not match the spec's layers by "
        "PyTorch's names (2 keys missing, 1,500 unexpected; none of the file's 1,500 keys names a layer parameter: "
        "another network's weights?): Missing key(s): 'fc.weight', 'fc.bias'; "
        "Unexpected key(s): 'h.0.attn.weight', 'h.1.attn.weight', "
    )
    assert found.startswith(head)
    assert found.endswith("'h.998.attn.weight', 'h.999.attn.weight', … (500 more)")
    assert found.count("attn.weight") == 1_000


def test_a_weight_file_of_another_model_gives_twenty_problems_and_a_count(problems, tmp_path):
    """Each stray layer name of the file got its own problem, and each problem looked through every key
    for every layer: a file of 20,000 stray names ran for more than ten minutes, to print 20,000 lines."""
    count = 25
    header = {
        f"enc.h{i}.weights": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(count)
    }
    (tmp_path / "net.safetensors").write_bytes(_safetensors(header, bytes(4 * count)))
    found = problems(DENSE)
    at = where(DENSE, "net.safetensors")
    assert found[:20] == [
        f"{at}: NS210 weights_file: net.safetensors holds 'enc.h{i}.weights', which matches no layer parameter; "
        "expected keys: fc.weights, fc.bias"
        for i in range(20)
    ]
    assert found[20:] == [
        f"{at}: NS210 weights_file: net.safetensors holds 5 more arrays that match no layer parameter "
        "('enc.h20.weights', 'enc.h21.weights', …); is it the weight file of this spec?"
    ]
