"""Imported specs a person can read: layers named as PyTorch names its modules, one layer a line, exact counts."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_graphs import helper, imports_as_onnxruntime_runs, invoke, model, onnx, ort, torch_export
from onnx_graphs import save as save_model

import netspec
from netspec.interop.export import export
from netspec.interop.naming import blocks, layer_name, module_path
from netspec.saving import save

torch = pytest.importorskip("torch")
nn = torch.nn


class BasicBlock(nn.Module):
    """torchvision's ResNet block: conv1, bn1, relu, conv2, bn2, the shortcut, relu again."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + x)


class TinyResNet(nn.Module):
    """Named as torchvision's ResNet names its modules: conv1, bn1, relu, maxpool, layer1.0..., avgpool, fc."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8)
        self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(8), BasicBlock(8))
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 5)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.layer1(x)), 1))


NAMES = [
    "conv1",
    "bn1",
    "maxpool",
    "layer1.0.conv1",
    "layer1.0.bn1",
    "layer1.0.conv2",
    "layer1.0.bn2",
    "layer1.0.add",
    "layer1.1.conv1",
    "layer1.1.bn1",
    "layer1.1.conv2",
    "layer1.1.bn2",
    "layer1.1.add",
    "avgpool",
    "fc",
]


def tiny_resnet():
    torch.manual_seed(0)
    module = TinyResNet()
    for norm in module.modules():  # statistics and scales that are not the identity
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_mean.uniform_(-0.5, 0.5), norm.running_var.uniform_(0.5, 2), norm.weight.data.uniform_(0.5, 2)
    return module, torch.randn(2, 3, 16, 16)


def test_a_resnet_imports_named_as_pytorch_names_its_modules_with_pytorchs_parameter_count(tmp_path):
    module, x = tiny_resnet()
    path = tmp_path / "resnet.onnx"
    # PRESERVE keeps the batch norms (eval mode would fold them into the convolutions' weights).
    torch_export(torch, module, x, path, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE)
    network = imports_as_onnxruntime_runs(path, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in network.layers] == NAMES
    assert network.spec.name == "resnet"  # the file's name: PyTorch names every graph "main_graph"
    # Convolutions before a batch norm have no bias, so the learned parameters are PyTorch's exactly.
    # By hand: conv1 8·3·3·3 = 216, bn1 2·8 = 16, four convs of 8·8·3·3 = 576, four batch norms of 16, fc 8·5 + 5.
    assert network.summary().trainable_params == sum(p.numel() for p in module.parameters()) == 2645
    assert [layer.spec.use_bias for layer in network.layers if layer.type == "conv2d"] == [False] * 5

    lines = (tmp_path / "resnet.yaml").read_text().splitlines()
    for line in [
        "  - {name: conv1, type: conv2d, filters: 8, kernel: 3, stride: 2, padding: 1, use_bias: false}",
        "  - {name: bn1, type: batchnorm, activation: relu}",
        "  - {name: maxpool, type: maxpool2d, size: 3, stride: 2, padding: 1}",
        "  - {name: layer1.0.conv1, type: conv2d, filters: 8, kernel: 3, padding: 1, use_bias: false}",
        "  - {name: layer1.0.add, type: add, inputs: [layer1.0.bn2, maxpool], activation: relu}",
        "  - {name: layer1.1.add, type: add, inputs: [layer1.1.bn2, layer1.0.add], activation: relu}",
        "  - {name: avgpool, type: global_avgpool}",
        "  - {name: fc, type: dense, neurons: 5}",
    ]:
        assert line in lines, line
    start = lines.index("layers:")
    assert len([line for line in lines[start + 1 :] if line.startswith("  - {")]) == len(NAMES)  # one layer a line
    assert "classes: ['0', '1', '2', '3', '4']" in lines  # after the layers
    arrays = np.load(tmp_path / "resnet.npz")
    np.testing.assert_array_equal(arrays["layer1.0.conv1.weights"], module.layer1[0].conv1.weight.detach().numpy())
    np.testing.assert_array_equal(arrays["layer1.1.bn2.var"], module.layer1[1].bn2.running_var.numpy())
    assert "layer1.0.conv1.bias" not in arrays


def test_a_model_exported_with_batch_norms_folded_is_named_from_its_node_names(tmp_path):
    # In eval mode the exporter folds each batch norm into its conv: the weights are named 'onnx::Conv_61',
    # the nodes still '/layer1/layer1.0/conv1/Conv'.
    module, x = tiny_resnet()
    path = tmp_path / "folded.onnx"
    torch_export(torch, module, x, path, dynamo=False)
    assert any(name.startswith("onnx::Conv") for name in (t.name for t in onnx.load(str(path)).graph.initializer))
    network = imports_as_onnxruntime_runs(path, x.numpy())
    assert [layer.name for layer in network.layers] == [name for name in NAMES if ".bn" not in name and name != "bn1"]


def test_features_in_nested_sequentials_are_named_by_their_full_path(tmp_path):
    # torchvision's MobileNet and EfficientNet: features.0 is a Sequential of conv, batch norm, activation;
    # the exporter writes '/features/features.0/features.0.0/Conv'.
    torch.manual_seed(1)

    def conv(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(conv(3, 4), conv(4, 4))
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * 6 * 6, 3))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    module, x = Net(), torch.randn(2, 3, 6, 6)
    path = tmp_path / "features.onnx"
    torch_export(torch, module, x, path, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE)
    network = imports_as_onnxruntime_runs(path, x.numpy())
    assert [(layer.name, layer.type) for layer in network.layers] == [
        ("features.0.0", "conv2d"),
        ("features.0.1", "batchnorm"),
        ("features.1.0", "conv2d"),
        ("features.1.1", "batchnorm"),
        ("flatten", "flatten"),
        ("classifier.1", "dense"),
    ]
    assert network.layers[1].spec.activation == "relu6"
    assert network.summary().trainable_params == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "node, path",
    [
        ("/layer1/layer1.0/conv1/Conv", "layer1.0.conv1"),
        ("/layer1/layer1.0/Add", "layer1.0"),
        ("/fc/Gemm", "fc"),
        ("/Flatten", ""),
        ("/features/features.0/features.0.0/Conv", "features.0.0"),
        # A Sequential inside a block: each Sequential writes its children under its own name only.
        ("/features/features.1/block/block.0/block.0.0/Conv", "features.1.block.0.0"),
        ("hidden1.gemm", None),  # netspec's own export, and hand-written graphs: not a module path
    ],
)
def test_the_module_a_node_ran_in_is_read_from_its_name(node, path):
    assert module_path(node) == path


def test_a_node_a_block_computes_itself_is_named_after_the_block_and_what_it_is():
    nodes = ["/layer1/layer1.0/conv1/Conv", "/layer1/layer1.0/Add", "/layer1/layer1.0/relu/Relu", "/fc/Gemm"]
    held = blocks(nodes)
    assert held == {"layer1", "layer1.0"}
    assert layer_name("/layer1/layer1.0/Add", "add", held, set()) == "layer1.0.add"
    assert layer_name("/layer1/layer1.0/relu/Relu", "relu", held, set()) == "layer1.0.relu"
    assert layer_name("/Flatten", "flatten", held, set()) == "flatten"
    # Used already: numbered. Not a valid name: None (the importer invents one, e.g. dense_3).
    assert layer_name("/fc/Gemm", "dense", held, {"fc", "fc_2"}) == "fc_3"
    assert layer_name("/a b/Conv", "conv2d", held, set()) is None
    assert layer_name("onnx::Conv_3", "conv2d", held, set()) is None
    assert layer_name("pool1", "maxpool2d", held, set()) == "pool1"


def test_a_second_use_of_one_module_gets_a_number(tmp_path):
    # One ReLU module used twice, with nothing to fold into (after a pooling): two activation layers.
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool, self.act, self.fc = nn.MaxPool2d(2), nn.ReLU(), nn.Linear(3 * 2 * 2, 2)

        def forward(self, x):
            return self.fc(torch.flatten(self.act(self.pool(self.act(self.pool(x)))), 1))

    module, x = Net(), torch.randn(2, 3, 8, 8)
    path = tmp_path / "twice.onnx"
    torch_export(torch, module, x, path, dynamo=False)
    network = imports_as_onnxruntime_runs(path, x.numpy())
    assert [layer.name for layer in network.layers] == ["pool", "act", "pool_1", "act_1", "flatten", "fc"]


def test_an_imported_spec_exports_and_imports_back_with_the_same_names_and_arrays(tmp_path):
    module, x = tiny_resnet()
    path = tmp_path / "resnet.onnx"
    torch_export(torch, module, x, path, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE)
    first = imports_as_onnxruntime_runs(path, x.numpy())
    again = tmp_path / "again.onnx"
    assert invoke("export", tmp_path / "resnet.yaml", "-o", again).exit_code == 0
    second = imports_as_onnxruntime_runs(again, x.numpy())
    assert [layer.name for layer in second.layers] == NAMES
    for one, other in zip(first.layers, second.layers):
        assert one.params.keys() == other.params.keys()
        for key in one.params:
            np.testing.assert_array_equal(one.params[key], other.params[key])


def test_the_flow_layout_reads_back_as_the_same_network_and_the_usual_layout_is_unchanged(tmp_path, write_spec):
    spec = write_spec("""\
        netspec: 1
        name: mixed
        classes: [a, 'yes', '1e3']
        input:
          image: {width: 8, height: 8, color: rgb, mean: [0.5, 0.4, 0.3], std: [0.25, 0.25, 0.25]}
        layers:
          - {name: stem.conv, type: conv2d, filters: 4, kernel: [3, 3], stride: [2, 1], padding: [1, 0, 1, 1]}
          - {name: stem.pool, type: maxpool2d, size: 2, ceil_mode: true}
          - {name: head.flat, type: flatten}
          - {name: head.out, type: dense, neurons: 3, activation: softmax}
        """)
    network = netspec.load(spec)
    flow_path, _ = save(network, tmp_path / "flow.yaml", flow=True)
    assert flow_path.read_text() == (
        "netspec: 1\n"
        "name: mixed\n"
        "input:\n"
        "  image: {width: 8, height: 8, color: rgb, mean: [0.5, 0.4, 0.3], std: [0.25, 0.25, 0.25]}\n"
        "weights_file: flow.npz\n"
        "\n"
        "layers:\n"
        "  - {name: stem.conv, type: conv2d, filters: 4, kernel: 3, stride: [2, 1], padding: [1, 0, 1, 1]}\n"
        "  - {name: stem.pool, type: maxpool2d, size: 2, stride: 2, ceil_mode: true}\n"
        "  - {name: head.flat, type: flatten}\n"
        "  - {name: head.out, type: dense, neurons: 3, activation: softmax}\n"
        "\n"
        "classes: [a, 'yes', '1e3']\n"
    )
    again = netspec.load(flow_path)
    assert again.classes == ["a", "yes", "1e3"]
    x = np.random.default_rng(0).uniform(size=(2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x), network.forward(x))
    # Without flow (Network.save, netspec train): one key a line, as before.
    block_path, _ = network.save(tmp_path / "block.yaml")
    assert (
        "layers:\n- name: stem.conv\n  type: conv2d\n  filters: 4\n  kernel:\n  - 3\n  - 3\n" in block_path.read_text()
    )


def test_the_flow_layout_keeps_the_input_on_one_line_and_wraps_labels_between_them(tmp_path, write_spec):
    labels = [f"American alligator {k}" for k in range(12)]
    spec = write_spec(f"""\
        netspec: 1
        name: wide
        classes: [{", ".join(labels)}]
        input:
          image: {{width: 4, height: 4, color: rgb, scale: [0.0, 1.0], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}}
        layers:
          - {{name: fc, type: dense, neurons: 12}}
        """)
    text = save(netspec.load(spec), tmp_path / "flow.yaml", flow=True)[0].read_text()
    lines = text.splitlines()
    assert (
        "  image: {width: 4, height: 4, color: rgb, scale: [0.0, 1.0], mean: [0.485, 0.456, 0.406], "
        "std: [0.229, 0.224, 0.225]}" in lines
    )
    start = lines.index(
        "classes: [American alligator 0, American alligator 1, American alligator 2, American alligator 3,"
    )
    assert lines[start + 1 :] == [
        "  American alligator 4, American alligator 5, American alligator 6, American alligator 7,",
        "  American alligator 8, American alligator 9, American alligator 10, American alligator 11]",
    ]
    assert netspec.load(tmp_path / "flow.yaml").classes == labels


def test_dotted_names_that_meet_another_layers_inner_names_export_a_valid_graph(tmp_path, write_spec):
    # Layer 'block' writes its Conv as 'block.conv' and its Relu as 'block.relu', which name layers here too.
    spec = write_spec("""\
        netspec: 1
        name: clash
        classes: [a, b]
        input: {image: {width: 6, height: 6, color: grayscale}}
        layers:
          - {name: block, type: conv2d, filters: 2, kernel: 3, activation: relu}
          - {name: block.conv, type: maxpool2d, size: 2}
          - {name: block.relu, type: flatten}
          - {name: out, type: dense, neurons: 2}
        """)
    network = netspec.load(spec)
    path = export(network, tmp_path / "clash.onnx")
    graph = onnx.load(str(path)).graph
    assert [node.name for node in graph.node] == [
        "block.conv_2",
        "block.relu_2",
        "block.conv",
        "block.relu",
        "out.gemm",
    ]
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6)).astype(np.float32)
    session = ort.InferenceSession(str(path))
    np.testing.assert_allclose(session.run(None, {"input": x})[0], network.forward(x), rtol=1e-5, atol=1e-6)
    back = imports_as_onnxruntime_runs(path, x)
    assert [layer.name for layer in back.layers] == ["block", "block.conv", "block.relu", "out"]


def test_a_weights_file_key_of_a_dotted_name_that_matches_no_layer_lists_the_keys(tmp_path, write_spec):
    np.savez(tmp_path / "arrays.npz", **{"stem.9.weights": np.zeros((2, 1, 3, 3), np.float32)})
    spec = write_spec("""\
        netspec: 1
        name: keys
        classes: [a, b]
        input: {image: {width: 4, height: 4, color: grayscale}}
        weights_file: arrays.npz
        layers:
          - {name: layer1.0.conv1, type: conv2d, filters: 2, kernel: 3, use_bias: false}
          - {type: flatten}
          - {name: fc, type: dense, neurons: 2}
        """)
    with pytest.raises(netspec.SpecError) as caught:
        netspec.load(spec)
    assert str(caught.value).replace(str(spec), "spec.yaml") == (
        "spec.yaml:5:15: NS210 weights_file: arrays.npz holds 'stem.9.weights', which matches no layer "
        "parameter; expected keys: layer1.0.conv1.weights, fc.weights, fc.bias"
    )


def test_netspecs_own_node_names_come_back_as_they_were(tmp_path):
    # A hand-written graph's plain node names are kept; dotted ones are names now too.
    nodes = [
        helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1, name="gemm"),
        helper.make_node("Relu", ["h"], ["r"], name="act.relu"),
        helper.make_node("Relu", ["h"], ["s"], name="second.act"),
        helper.make_node("Add", ["r", "s"], ["y"], name="sum"),
    ]
    network = imports_as_onnxruntime_runs(save_model(model(nodes), tmp_path), np.ones((2, 4), np.float32))
    assert [layer.name for layer in network.layers] == ["dense_0", "act", "second.act", "sum"]
