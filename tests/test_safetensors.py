"""weights_file as .safetensors, PyTorch's state-dict names (names: pytorch), and `netspec convert`.

PyTorch and the safetensors package are the references: files are written by safetensors.torch
(never by netspec's own writer, except where that writer is what is tested), and the network
loaded from them is compared with the torch module they came from.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main

from conftest import where

torch = pytest.importorskip("torch", reason="PyTorch is the reference (pip install -e '.[test]')")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="the reference writer (pip install -e '.[test]')")
nn = torch.nn

# The netspec twin of Net below: the same names, so that Net's state dict loads by name.
SPEC = """\
netspec: 1
classes: [a, b, c]
input: {image: {width: 6, height: 5}}
weights_file: {file: net.safetensors, names: pytorch}
layers:
  - {name: conv1, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}
  - {name: bn1, type: batchnorm, activation: relu}
  - {name: layer1.0, type: conv2d, filters: 6, kernel: [3, 2], stride: 2, groups: 2}
  - {name: layer1.1, type: batchnorm, activation: relu}
  - {name: flat, type: flatten}
  - {name: fc, type: dense, neurons: 3}
"""


class Net(nn.Module):
    """conv → bn → relu, a Sequential (dotted names layer1.0, layer1.1) with a grouped conv, then a linear layer."""

    def __init__(self, fc_in: int = 6 * 2 * 3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(nn.Conv2d(4, 6, (3, 2), stride=2, groups=2), nn.BatchNorm2d(6))
        self.fc = nn.Linear(fc_in, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.layer1(x))
        return self.fc(torch.flatten(x, 1))


def trained_net() -> Net:
    """A Net with batch norms whose statistics and scales are not the initial ones (else they would test nothing)."""
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        for bn in (net.bn1, net.layer1[1]):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-1.0, 1.0)
            bn.running_mean.uniform_(-1.0, 1.0)
            bn.running_var.uniform_(0.5, 2.0)
            bn.num_batches_tracked.fill_(7)
    return net.eval()


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


def test_a_pytorch_state_dict_loads_by_name_and_computes_as_pytorch(write_spec, tmp_path):
    net = trained_net()
    assert "bn1.num_batches_tracked" in net.state_dict()  # in the file, and ignored
    safetensors_torch.save_file(net.state_dict(), tmp_path / "net.safetensors")
    network = netspec.load(write_spec(SPEC))
    x = np.random.default_rng(1).normal(size=(5, 3, 5, 6)).astype(np.float32)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(network.forward(x), theirs, rtol=1e-5, atol=1e-5)
    # Each array is PyTorch's, in PyTorch's layout: conv (out, in / groups, kh, kw), linear (out, in).
    layers = {layer.name: layer.params for layer in network.layers}
    np.testing.assert_array_equal(layers["layer1.0"]["weights"], net.layer1[0].weight.detach().numpy())
    np.testing.assert_array_equal(layers["fc"]["weights"], net.fc.weight.detach().numpy())
    np.testing.assert_array_equal(layers["layer1.1"]["var"], net.layer1[1].running_var.numpy())
    np.testing.assert_array_equal(layers["bn1"]["scale"], net.bn1.weight.detach().numpy())


def test_netspec_own_names_round_trip_through_safetensors(write_spec, tmp_path):
    from safetensors.numpy import save_file

    text = SPEC.replace("{file: net.safetensors, names: pytorch}", "own.safetensors")
    network = netspec.load(write_spec(text.replace("weights_file: own.safetensors\n", ""), "plain.yaml"))
    arrays = {f"{layer.name}.{name}": array for layer in network.layers for name, array in layer.params.items()}
    rng = np.random.default_rng(2)
    arrays = {key: rng.uniform(0.5, 1.5, size=array.shape).astype(array.dtype) for key, array in arrays.items()}
    del arrays["fc.bias"]  # netspec's own names may leave parameters to the layers (here 0), as with .npz
    save_file(arrays, tmp_path / "own.safetensors")
    loaded = netspec.load(write_spec(text))
    for layer in loaded.layers:
        for name, array in layer.params.items():
            expected = arrays.get(f"{layer.name}.{name}", np.zeros(3))
            np.testing.assert_array_equal(array, expected)


def test_half_and_bfloat16_tensors_are_read_exactly(write_spec, tmp_path):
    state = {key: value.clone() for key, value in trained_net().state_dict().items()}
    state["fc.weight"] = state["fc.weight"].to(torch.bfloat16)  # NumPy has no bfloat16: widened to float32
    state["conv1.weight"] = state["conv1.weight"].to(torch.float16)
    safetensors_torch.save_file(state, tmp_path / "net.safetensors")
    layers = {layer.name: layer.params for layer in netspec.load(write_spec(SPEC)).layers}
    np.testing.assert_array_equal(layers["fc"]["weights"], state["fc.weight"].float().numpy())
    np.testing.assert_array_equal(layers["conv1"]["weights"], state["conv1.weight"].float().numpy())


def test_names_pytorch_reads_a_npz_as_well(write_spec, tmp_path):
    net = trained_net()
    np.savez(tmp_path / "net.npz", **{key: value.numpy() for key, value in net.state_dict().items()})
    network = netspec.load(write_spec(SPEC.replace("net.safetensors", "net.npz")))
    x = np.random.default_rng(5).normal(size=(2, 3, 5, 6)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x), net(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["net.pth", "net.npz"])
def test_a_pytorch_pickle_is_never_read_as_weights(problems, tmp_path, name):
    # torch.save writes a zip since PyTorch 1.6: read as a .npz it would hold no arrays, and every layer
    # would silently keep its initial values.
    torch.save(trained_net().state_dict(), tmp_path / name)
    text = SPEC.replace("net.safetensors", name)
    out = name.replace(name.rpartition(".")[2], "safetensors")
    assert problems(text) == [
        f"{where(text, '{file: net')}: NS203 weights_file: {name} is a PyTorch file (a pickle), which netspec does "
        f"not read: loading one can run code; convert it once with `netspec convert {name} {out}` and give {out} "
        "with names: pytorch"
    ]


def test_missing_and_unexpected_keys_are_listed_in_one_problem(problems, tmp_path):
    state = trained_net().state_dict()
    state["fc1.weight"], state["fc1.bias"] = state.pop("fc.weight"), state.pop("fc.bias")  # a renamed module
    state["conv1.bias"] = torch.zeros(4)  # the spec's conv1 has use_bias: false
    del state["layer1.0.bias"]  # and the spec's layer1.0 has a bias
    safetensors_torch.save_file(state, tmp_path / "net.safetensors")
    assert problems(SPEC) == [
        f"{where(SPEC, '{file: net')}: NS211 weights_file: net.safetensors does not match the spec's layers by "
        "PyTorch's names (3 keys missing, 3 unexpected): Missing key(s): 'layer1.0.bias' (the file has no bias for "
        "it: give layer 'layer1.0' use_bias: false), 'fc.weight', 'fc.bias'; Unexpected key(s): 'conv1.bias' "
        "(layer 'conv1' has use_bias: false), 'fc1.bias' (did you mean 'fc.bias'?), 'fc1.weight' (did you mean "
        "'fc.weight'?)"
    ]


def test_unexpected_keys_are_listed_in_the_order_a_model_lists_them(problems, tmp_path):
    """layer2 before layer10, as PyTorch numbers modules, not as text sorts them."""
    state = trained_net().state_dict()
    for block in range(1, 13):
        state[f"layer{block}.weight"] = torch.zeros(1)
    safetensors_torch.save_file(state, tmp_path / "net.safetensors")
    (problem,) = problems(SPEC)
    listed = ", ".join(f"'layer{block}.weight'" for block in range(1, 13))
    assert problem.endswith(f"(12 unexpected): Unexpected key(s): {listed}")


def test_a_shape_mismatch_names_both_shapes_at_the_layer(problems, tmp_path):
    safetensors_torch.save_file(Net(fc_in=30).state_dict(), tmp_path / "net.safetensors")
    assert problems(SPEC) == [
        f"{where(SPEC, '{name: fc,')}: NS204 layers[5]: layer 'fc': net.safetensors holds 'fc.weight' of shape "
        "(3, 30), but the layer needs (3, 36) for its weights (neuron × input)"
    ]


def test_a_state_dict_read_by_netspec_names_says_to_write_names_pytorch(problems, tmp_path):
    safetensors_torch.save_file(trained_net().state_dict(), tmp_path / "net.safetensors")
    text = SPEC.replace("{file: net.safetensors, names: pytorch}", "net.safetensors")
    assert problems(text) == [
        f"{where(text, 'net.safetensors')}: NS210 weights_file: net.safetensors holds PyTorch's names "
        "('bn1.num_batches_tracked', 'bn1.running_mean', …), which are not netspec's; write "
        "weights_file: {file: net.safetensors, names: pytorch}"
    ]


def test_a_weights_file_outside_the_spec_folder_is_refused(problems, tmp_path):
    text = SPEC.replace("{file: net.safetensors", "{file: ../net.safetensors")
    assert problems(text) == [
        f"{where(text, '{file: ../net')}: NS207 weights_file: '../net.safetensors' leads outside the spec's folder "
        f"({tmp_path}); keep weight files beside the spec"
    ]


def test_names_must_be_netspec_or_pytorch(problems):
    text = SPEC.replace("names: pytorch", "names: torch")
    assert problems(text) == [
        f"{where(text, 'torch}')}: NS105 weights_file.names: must be one of netspec, pytorch, got 'torch' (text); "
        "did you mean 'pytorch'?"
    ]


def _saved(tmp_path: Path) -> tuple[Path, bytes, int, dict]:
    """net.safetensors as safetensors writes it: the file, its bytes, its header's length and its header."""
    path = tmp_path / "net.safetensors"
    safetensors_torch.save_file(trained_net().state_dict(), path)
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return path, data, length, json.loads(data[8 : 8 + length])


def test_a_file_cut_short_is_refused_before_reading_arrays(problems, tmp_path):
    path, data, length, header = _saved(tmp_path)
    path.write_bytes(data[:-10])
    total = max(entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__")
    assert problems(SPEC) == [
        f"{where(SPEC, '{file: net')}: NS203 weights_file: net.safetensors is cut short: its header declares "
        f"{total:,} bytes of arrays but the file holds {total - 10:,} after the header (an interrupted download "
        "or copy?)"
    ]
    path.write_bytes(data[: 8 + length // 2])  # the header itself cut
    assert problems(SPEC) == [
        f"{where(SPEC, '{file: net')}: NS203 weights_file: net.safetensors is cut short: its header should take "
        f"{length:,} bytes but the file has {length // 2:,} more"
    ]


def test_a_header_whose_offsets_lie_is_refused(problems, tmp_path):
    path, data, length, header = _saved(tmp_path)
    header["fc.bias"]["data_offsets"] = [10**6, 10**6 + 12]  # the right size, far past the end
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length :])
    size = len(data) - 8 - length
    assert problems(SPEC) == [
        f"{where(SPEC, '{file: net')}: NS203 weights_file: the header of net.safetensors is wrong: array 'fc.bias' "
        f"lies at bytes 1,000,000–1,000,012, past the end of the data ({size:,} bytes)"
    ]
    header["fc.bias"]["data_offsets"] = [0, 8]  # 3 float32 values need 12 bytes
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length :])
    assert problems(SPEC) == [
        f"{where(SPEC, '{file: net')}: NS203 weights_file: the header of net.safetensors is wrong: array 'fc.bias' "
        "is (3,) of F32 (12 bytes) but its offsets span 8 bytes"
    ]


TWICE = b'{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}'
"""A header naming one array twice: JSON keeps the last, and the first's bytes would be silently lost."""


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "net.safetensors is empty (0 bytes); a .safetensors file begins with 8 bytes giving its header's length"),
        (
            struct.pack("<Q", 2**40),
            "net.safetensors declares a header of 1,099,511,627,776 bytes, more than 100,000,000; it is damaged",
        ),
        (
            struct.pack("<Q", 4) + b"[1] ",
            "the header of net.safetensors is JSON but not an object of arrays; is it a .safetensors file?",
        ),
        (
            struct.pack("<Q", 3) + b"abc",
            "the header of net.safetensors is not valid JSON (Expecting value: line 1 "
            "column 1 (char 0)); is it a .safetensors file?",
        ),
        (
            struct.pack("<Q", len(TWICE)) + TWICE + bytes(8),
            "the header of net.safetensors is wrong: it names array 'a' twice",
        ),
    ],
    ids=["empty", "huge header", "not an object", "not JSON", "a name twice"],
)
def test_a_file_that_is_no_safetensors_is_refused(problems, tmp_path, content, message):
    (tmp_path / "net.safetensors").write_bytes(content)
    assert problems(SPEC) == [f"{where(SPEC, '{file: net')}: NS203 weights_file: {message}"]


def test_damaged_files_give_netspec_problems_and_nothing_else(write_spec, tmp_path):
    """Bytes changed or cut anywhere, header first: every outcome is a list of problems, never an exception."""
    path, data, length, _ = _saved(tmp_path)
    spec = write_spec(SPEC)
    rng = np.random.default_rng(6)
    codes = set()
    for _ in range(100):
        damaged = bytearray(data)
        for at in rng.integers(0, 8 + length + 16, size=rng.integers(1, 4)):
            damaged[at] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            damaged = damaged[: int(rng.integers(0, len(damaged)))]
        path.write_bytes(bytes(damaged))
        codes |= {problem.code for problem in netspec.check(spec)}
    assert codes <= {"NS203", "NS204", "NS205", "NS209", "NS211"} and "NS203" in codes


def test_arrays_that_are_not_numbers_or_not_finite_are_refused(problems, tmp_path):
    state = trained_net().state_dict()
    state["fc.bias"] = torch.tensor([0.0, float("nan"), 1.0])
    state["conv1.weight"] = state["conv1.weight"].to(torch.float8_e4m3fn)
    safetensors_torch.save_file(state, tmp_path / "net.safetensors")
    at = where(SPEC, "{file: net")
    assert problems(SPEC) == [
        f"{at}: NS205 weights_file: net.safetensors['conv1.weight'] holds F8_E4M3 values, which netspec cannot "
        "read; convert the tensor to float32 before saving it (tensor.float() in PyTorch)"
    ]
    state["conv1.weight"] = trained_net().conv1.weight.detach()
    safetensors_torch.save_file(state, tmp_path / "net.safetensors")
    assert problems(SPEC) == [
        f"{at}: NS209 weights_file: net.safetensors['fc.bias'] holds 1 NaN or infinite value(s); every value "
        "must be finite"
    ]


def test_convert_writes_a_pth_state_dict_that_loads_by_name(write_spec, tmp_path):
    net = trained_net()
    torch.save({"state_dict": net.state_dict(), "epoch": 12}, tmp_path / "net.pth")  # a training checkpoint
    result = invoke("convert", tmp_path / "net.pth", tmp_path / "net.safetensors")
    assert result.exit_code == 0
    size = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    assert result.output == f"wrote {tmp_path / 'net.safetensors'} (15 tensors, {size / 1024:.1f} KiB)\n"
    # The reference reader reads netspec's file back, tensor for tensor, dtypes kept.
    back = safetensors_torch.load_file(tmp_path / "net.safetensors")
    assert back.keys() == net.state_dict().keys()
    for key, tensor in net.state_dict().items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor)
    network = netspec.load(write_spec(SPEC))
    x = np.random.default_rng(3).normal(size=(2, 3, 5, 6)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x), net(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "saved, message",
    [
        (
            lambda: {"fc.weight": torch.ones(2, 2), "epoch": 3},
            "holds 'epoch': an int, not a tensor; a state dict maps names to tensors (save model.state_dict(), or "
            "a checkpoint with it under 'state_dict' or 'model')",
        ),
        (
            lambda: {"model": {"fc.weight": torch.ones(2), "fc.extra": {"a": torch.ones(1)}}},
            "its state dict (under 'model') holds 'fc.extra': a mapping, not a tensor; a state dict maps names to "
            "tensors (save model.state_dict(), or a checkpoint with it under 'state_dict' or 'model')",
        ),
        (lambda: [torch.ones(2)], "holds a list, not a state dict (a mapping of names to tensors)"),
        (
            lambda: nn.Linear(2, 2),
            "holds a torch.nn.modules.linear.Linear object, which torch.load(weights_only=True) will not make "
            "(loading it could run code); save only the weights where you trust the file: "
            "torch.save(model.state_dict(), 'weights.pth')",
        ),
        (lambda: {}, "its state dict is empty: there are no tensors to convert"),
    ],
    ids=["not a tensor", "nested mapping", "a list", "a whole module", "empty"],
)
def test_convert_refuses_what_is_not_a_state_dict(tmp_path, saved, message):
    torch.save(saved(), tmp_path / "model.pth")
    result = invoke("convert", tmp_path / "model.pth", tmp_path / "model.safetensors")
    assert result.exit_code == 1
    assert result.stderr == f"{tmp_path / 'model.pth'}: NS213 {message}\n"
    assert not (tmp_path / "model.safetensors").exists()


def test_convert_leaves_the_old_file_whole_when_it_fails(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"kept")
    (tmp_path / "model.pth").write_bytes(b"not a torch file")
    result = invoke("convert", tmp_path / "model.pth", tmp_path / "model.safetensors")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{tmp_path / 'model.pth'}: NS213 cannot be read by torch.load (UnpicklingError); give a file written by "
        "torch.save\n"
    )
    assert (tmp_path / "model.safetensors").read_bytes() == b"kept"


def test_convert_without_torch_says_what_to_install(tmp_path, monkeypatch):
    torch.save({"w": torch.ones(1)}, tmp_path / "model.pth")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if it were not installed
    result = invoke("convert", tmp_path / "model.pth", tmp_path / "model.safetensors")
    assert result.exit_code == 1
    assert result.stderr == (
        "NS212 netspec convert reads .pth files with PyTorch, which is not installed: pip install torch\n"
    )


def test_convert_writes_only_safetensors_and_never_over_its_source(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "model.pth")
    result = invoke("convert", tmp_path / "model.pth", tmp_path / "model.npz")
    assert result.exit_code == 2
    assert "model.npz should end in .safetensors (netspec reads weight files by their suffix)" in result.stderr
    twin = tmp_path / "same.safetensors"
    twin.write_bytes((tmp_path / "model.pth").read_bytes())
    result = invoke("convert", twin, twin)
    assert result.exit_code == 2 and "would overwrite SOURCE" in result.stderr


def test_convert_says_when_the_output_has_no_name_or_no_folder(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "model.pth")
    result = invoke("convert", tmp_path / "model.pth", tmp_path / ".safetensors")
    assert result.exit_code == 2
    assert "has no name before .safetensors; write e.g. resnet18.safetensors" in result.stderr
    result = invoke("convert", tmp_path / "model.pth", tmp_path / "missing" / "model.safetensors")
    assert result.exit_code == 2
    assert f"the folder {tmp_path / 'missing'} does not exist; create it first" in " ".join(result.stderr.split())


def test_the_reader_agrees_with_the_safetensors_package_on_netspec_written_files(tmp_path):
    """netspec's writer (used by convert) read back by the reference, and the reference's files by netspec."""
    from safetensors.numpy import load_file, save_file

    from netspec.safetensors_file import SafetensorsFile, write

    rng = np.random.default_rng(4)
    arrays = {"a": rng.normal(size=(2, 3)), "b.c": rng.normal(size=(5,)).astype(np.float32), "z": np.zeros((0, 4))}
    with open(tmp_path / "ours.safetensors", "wb") as stream:
        write(stream, {key: (("F64", "F32")[a.dtype == np.float32], a.shape, a.tobytes()) for key, a in arrays.items()})
    for key, array in load_file(tmp_path / "ours.safetensors").items():
        np.testing.assert_array_equal(array, arrays[key])
    save_file(arrays, tmp_path / "theirs.safetensors", metadata={"format": "np"})
    with SafetensorsFile(tmp_path / "theirs.safetensors") as opened:
        assert sorted(opened.keys()) == sorted(arrays)
        for key, array in arrays.items():
            np.testing.assert_array_equal(opened.read(key, array.shape), array)


def test_a_dataparallel_prefix_is_named_and_convert_strips_it(problems, tmp_path):
    net = trained_net()
    wrapped = nn.DataParallel(net)  # its state dict's keys start with "module."
    torch.save(wrapped.state_dict(), tmp_path / "net.pth")
    assert invoke("convert", tmp_path / "net.pth", tmp_path / "net.safetensors").exit_code == 0
    found = problems(SPEC)
    assert len(found) == 1 and found[0].startswith(
        f"{where(SPEC, '{file: net')}: NS211 weights_file: net.safetensors does not match the spec's layers by "
        "PyTorch's names (13 keys missing, 15 unexpected): Missing key(s): 'conv1.weight', "
    )
    assert found[0].endswith(
        "; every key of the file starts with 'module.', which no layer name does (a model saved inside "
        "torch.nn.DataParallel?): convert the .pth again with --strip-prefix module."
    )
    result = invoke("convert", tmp_path / "net.pth", tmp_path / "net.safetensors", "--strip-prefix", "module.")
    assert result.exit_code == 0 and problems(SPEC) == []
    assert safetensors_torch.load_file(tmp_path / "net.safetensors").keys() == net.state_dict().keys()
