"""benchmarks/convnet_floors.py reads the right shapes and kinds: each convolution's unrolled product and each
depthwise layer's output as computed by hand, the same kinds from netspec's steps and onnxruntime's profiler,
and its timed steps leave the network as it was. No timings are asserted."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[test]')")
pytest.importorskip("onnxruntime", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)")

import netspec  # noqa: E402
from benchmarks import convnet_floors as floors  # noqa: E402
from benchmarks.model_graphs import export_keeping_batch_norms  # noqa: E402
from netspec.interop.importer import import_model  # noqa: E402

SIDE = 12


class Small(torch.nn.Module):
    """A 3×3 stride-2 stem, a depthwise 3×3 with ReLU6, a 1×1 projection: MobileNet's three kinds."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.depthwise = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(8, 4, 1, bias=False), nn.BatchNorm2d(4))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = self.project(self.depthwise(self.stem(x)))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 1), 1))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("floors")
    torch.manual_seed(0)
    model = Small().eval()
    onnx_path, spec = folder / "small.onnx", folder / "small.yaml"
    export_keeping_batch_norms(model, onnx_path, SIDE)
    import_model(onnx_path, spec)
    x = np.random.default_rng(0).standard_normal((3, 3, SIDE, SIDE), dtype=np.float32)
    return netspec.load(spec), onnx_path, x, folder


def test_product_and_depthwise_shapes_are_the_unrolled_ones(small):
    network, *_ = small
    half = SIDE // 2  # the stem's stride 2 with padding 1
    # (kind, groups, batch · out_h · out_w, kh · kw · channels, filters); the depthwise layer is not a product.
    assert floors.product_shapes(network, 3) == [
        ("conv 3×3", 1, 3 * half * half, 27, 8),
        ("conv 1×1", 1, 3 * half * half, 8, 4),
    ]
    # (batch · out_h, out_w · channels, taps, input numbers)
    assert floors.depthwise_shapes(network, 3) == [(3 * half, half * 8, 9, 3 * 8 * half * half)]


def test_netspec_and_onnxruntime_kinds_agree(small):
    network, onnx_path, x, folder = small
    convolutions = {"conv 3×3", "conv 3×3 depthwise", "conv 1×1"}
    assert convolutions <= set(floors.netspec_kinds(network))
    profiled = floors.ProfiledSession(onnx_path, x, folder)
    for _ in range(3):
        profiled.run()
    kinds = profiled.kinds()
    assert convolutions <= set(kinds)
    assert all(ms >= 0 for ms in kinds.values())


def test_timed_steps_leave_the_network_as_it_was(small):
    network, _, x, _ = small
    before = network.forward(x, threads=1)
    steps, program = network._steps, network._program
    timed = floors.StepTimes(network, x)
    for _ in range(2):
        timed.run()
    assert len(timed.medians()) == len(steps)
    assert network._steps is steps and network._program is program
    np.testing.assert_array_equal(network.forward(x, threads=1), before)


def test_the_floors_compute_what_they_stand_for(small):
    """The products' floor writes a @ w.T block by block over every row; the depthwise floor runs."""
    rng = np.random.default_rng(1)
    run = floors.products_floor([("conv 3×3", 1, 10, 27, 8)], rng)["conv 3×3"]
    run()  # no error: operands of the right shapes
    cells = run.__defaults__[0]  # [(w.T, [(block operand, rows of the output)])]
    ((weights_t, blocks),) = cells
    assert weights_t.shape == (27, 8) and not weights_t.flags.c_contiguous  # (filters, k) read transposed
    assert sum(len(c) for _, c in blocks) == 10
    for a, c in blocks:
        np.testing.assert_allclose(c, a @ weights_t, rtol=1e-5, atol=1e-5)
    floors.depthwise_floor([(6, 48, 9, 3 * 8 * 36)], rng)()


def test_operations_are_counted_the_same_each_pass(small):
    network, _, x, _ = small
    first, second = floors.operations(network, x), floors.operations(network, x)
    assert first == second and all(count > 0 for count in first.values())
