"""benchmarks/onnx_models.py's parameter column: a zoo graph whose batch norms are followed by Caffe's Scale layer
counts the Scale's arrays, which import folds into the batch norms, so the row says so instead of '≠'."""

from __future__ import annotations

import numpy as np
from onnx_graphs import helper, invoke, model, numpy_helper, save

import netspec
from benchmarks.model_graphs import scale_values
from benchmarks.onnx_models import Row, params_cell

RNG = np.random.default_rng(5)
ARRAYS = {
    "K": RNG.normal(size=(2, 3, 3, 3)).astype(np.float32),
    "scale": RNG.uniform(0.5, 1.5, 2).astype(np.float32),
    "shift": RNG.normal(size=2).astype(np.float32),
    "mean": RNG.normal(size=2).astype(np.float32),
    "var": RNG.uniform(0.5, 1.5, 2).astype(np.float32),
    "m": RNG.uniform(0.5, 1.5, 2).astype(np.float32),
    "a": RNG.normal(size=2).astype(np.float32),
}


def scaled_batch_norm():
    """Conv, BatchNormalization, then Caffe's Scale as the zoo's DenseNet-121 writes it: Unsqueeze, Mul, Add."""
    nodes = [
        helper.make_node(
            "Constant", [], ["axes"], value=numpy_helper.from_array(np.array([1, 2], np.int64)), name="axes"
        ),
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
        helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["bn"], name="bn"),
        helper.make_node("Unsqueeze", ["m", "axes"], ["mm"], name="um"),
        helper.make_node("Mul", ["bn", "mm"], ["scaled"], name="scaled"),
        helper.make_node("Unsqueeze", ["a", "axes"], ["aa"], name="ua"),
        helper.make_node("Add", ["scaled", "aa"], ["shifted"], name="shifted"),
        helper.make_node("Relu", ["shifted"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["y"], name="flatten"),
    ]
    return model(nodes, inputs=("x", ["batch", 3, 4, 4]), constants=ARRAYS)


def test_the_scale_values_are_those_import_folds_into_the_batch_norm(tmp_path):
    made = scaled_batch_norm()
    readers = {}
    for node in made.graph.node:
        for slot, name in enumerate(node.input):
            readers.setdefault(name, []).append((node, slot))
    assert scale_values(made.graph, ARRAYS, readers) == 4  # m and a, one value per channel each
    path = save(made, tmp_path)
    assert invoke("import", path, "-o", tmp_path / "model.yaml").exit_code == 0
    reference = sum(array.size for array in ARRAYS.values())  # 54 + 4 · 2 + 2 · 2 = 66
    # the conv's 54 weights and the batch norm's 8 values, the Scale inside them
    assert netspec.load(tmp_path / "model.yaml").summary().params == reference - 4 == 62


def row(params, reference, folded=0):
    return Row("zoo-x", "onnx zoo", reference_params=reference, folded_params=folded, imported=True, params=params)


def test_a_count_short_by_the_folded_scale_values_says_so():
    assert params_cell(row(11_214_888, 11_234_792, 19_904)) == (
        "11,214,888 / 11,234,792 = after folding 19,904 Scale values"
    )


def test_other_counts_are_equal_or_marked_different():
    assert params_cell(row(62, 62)) == "62 / 62"
    assert params_cell(row(60, 66, 4)) == "60 / 66 ≠"
    assert params_cell(row(62, 66)) == "62 / 66 ≠"
