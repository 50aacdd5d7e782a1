"""Building: explicit arrays, weight files (.npy/.npz, weights_file), path safety, size limit."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

import netspec
from netspec.errors import with_article

from conftest import where

SPEC = """\
netspec: 1
classes: [a, b]
input: {features: 3}
layers:
  - name: hidden
    type: dense
    neurons: 2
    weights: WEIGHTS
    bias: BIAS
  - {name: output, type: dense, neurons: 2}
"""


def spec_text(weights: str = "zeros", bias: str = "0.0") -> str:
    return SPEC.replace("WEIGHTS", weights).replace("BIAS", bias)


def test_explicit_weights_and_bias_are_used_as_written(write_spec):
    path = write_spec(spec_text("[[1, 2, 3], [4, 5, 6]]", "[0.5, -0.5]"))
    hidden = netspec.load(path).layers[0]
    np.testing.assert_array_equal(hidden.params["weights"], np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))
    np.testing.assert_array_equal(hidden.params["bias"], np.array([0.5, -0.5], dtype=np.float32))
    assert hidden.params["weights"].dtype == np.float32


def test_one_number_fills_the_whole_array(write_spec):
    hidden = netspec.load(write_spec(spec_text("0.25", "-1"))).layers[0]
    np.testing.assert_array_equal(hidden.params["weights"], np.full((2, 3), 0.25))
    np.testing.assert_array_equal(hidden.params["bias"], [-1, -1])


def test_wrong_number_of_rows(problems):
    text = spec_text("[[1, 2, 3], [4, 5, 6], [7, 8, 9]]")
    assert problems(text) == [
        f"{where(text, '[[1')}: NS201 layers[0].weights: layer 'hidden': weights has 3 rows "
        "but the layer has 2 neurons (one row per neuron)"
    ]


def test_wrong_row_length(problems):
    text = spec_text("[[1, 2, 3, 4], [5, 6, 7, 8]]")
    assert problems(text) == [
        f"{where(text, '[[1')}: NS201 layers[0].weights: layer 'hidden': weights rows have 4 values "
        "but the layer receives 3 inputs"
    ]


def test_ragged_rows(problems):
    text = spec_text("[[1, 2, 3], [4, 5]]")
    assert problems(text) == [
        f"{where(text, '[[1')}: NS201 layers[0].weights: layer 'hidden': rows of weights differ in length "
        "(row 0 has 3 values, row 1 has 2); every row needs one value per input"
    ]


def test_uneven_kernels_name_the_lists_that_differ(problems):
    text = (
        "netspec: 1\nclasses: [a, b]\ninput: {image: {width: 2, height: 2, color: grayscale}}\nlayers:\n"
        "  - {name: conv, type: conv2d, filters: 1, kernel: 1, weights: [[[[1, 2], [3]]]]}\n"
        "  - {type: flatten}\n  - {type: dense, neurons: 2}\n"
    )
    assert problems(text) == [
        f"{where(text, '[[[[1')}: NS201 layers[0].weights: layer 'conv': lists of weights differ in length "
        "(weights[0][0][0] has 2 values, weights[0][0][1] has 1); every list at one depth needs the same length"
    ]


def test_wrong_bias_length(problems):
    text = spec_text(bias="[1, 2, 3]")
    assert problems(text) == [
        f"{where(text, '[1, 2, 3]')}: NS201 layers[0].bias: layer 'hidden': bias has 3 values "
        "but the layer has 2 neurons (one value per neuron)"
    ]


def test_weights_from_npy_and_npz(write_spec, tmp_path):
    w = np.arange(6, dtype=np.float64).reshape(2, 3) / 10
    np.save(tmp_path / "hidden.npy", w)
    np.savez(tmp_path / "all.npz", **{"hidden.bias": np.array([1.0, 2.0])})
    path = write_spec(spec_text("{file: hidden.npy}", "{file: all.npz, key: hidden.bias}"))
    hidden = netspec.load(path).layers[0]
    np.testing.assert_array_equal(hidden.params["weights"], w.astype(np.float32))
    np.testing.assert_array_equal(hidden.params["bias"], [1.0, 2.0])


def test_weight_file_problems_are_all_reported(problems, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3)))
    np.savez(tmp_path / "all.npz", other=np.zeros(2))
    text = spec_text("{file: wrong.npy}", "{file: all.npz, key: hidden.bias}")
    assert problems(text) == [
        f"{where(text, '{file: wrong')}: NS204 layers[0].weights: layer 'hidden': wrong.npy has 3 rows "
        "but the layer has 2 neurons (one row per neuron)",
        f"{where(text, '{file: all')}: NS206 layers[0].bias: layer 'hidden': all.npz has no array 'hidden.bias'; "
        "it has: other",
    ]


def test_missing_and_unreadable_files(problems, tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    text = spec_text("{file: missing.npy}", "{file: junk.npy}")
    found = problems(text)
    assert found[0] == (
        f"{where(text, '{file: missing')}: NS202 layers[0].weights: layer 'hidden': "
        f"weight file 'missing.npy' not found in {tmp_path}"
    )
    assert found[1].startswith(
        f"{where(text, '{file: junk')}: NS203 layers[0].bias: layer 'hidden': cannot read junk.npy"
    )


def test_npz_without_key_lists_its_keys(problems, tmp_path):
    np.savez(tmp_path / "w.npz", a=np.zeros(2), b=np.zeros(2))
    text = spec_text(bias="{file: w.npz}")
    assert problems(text) == [
        f"{where(text, '{file: w.npz}')}: NS206 layers[0].bias: layer 'hidden': w.npz is a .npz file; "
        "say which array with 'key' (it has: a, b)"
    ]


def test_object_arrays_and_pickles_are_refused_without_running_them(problems, tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    text = spec_text(bias="{file: obj.npy}")
    assert problems(text) == [
        f"{where(text, '{file: obj')}: NS205 layers[0].bias: layer 'hidden': obj.npy holds object values; "
        "weight arrays must hold numbers (float or int)"
    ]
    text = spec_text(bias="{file: text.npy}")
    assert problems(text)[0].endswith(
        "NS205 layers[0].bias: layer 'hidden': text.npy holds <U1 values; weight arrays must hold numbers (float or int)"
    )


def test_npz_members_zipfile_cannot_open_are_one_located_error(problems, tmp_path):
    np.savez(tmp_path / "w.npz", bias=np.zeros(2))
    data = bytearray((tmp_path / "w.npz").read_bytes())
    for header, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # mark the member encrypted, as a password would
        at = data.index(header) + flags_at
        data[at] |= 1
    (tmp_path / "w.npz").write_bytes(bytes(data))
    text = spec_text(bias="{file: w.npz, key: bias}")
    assert problems(text) == [
        f"{where(text, '{file: w.npz')}: NS203 layers[0].bias: layer 'hidden': cannot read w.npz['bias']: "
        "File 'bias.npy' is encrypted, password required for extraction; write it with numpy.save or numpy.savez"
    ]


def test_non_finite_values_in_files(problems, tmp_path):
    np.save(tmp_path / "nan.npy", np.array([np.nan, 1.0]))
    text = spec_text(bias="{file: nan.npy}")
    assert problems(text) == [
        f"{where(text, '{file: nan')}: NS209 layers[0].bias: layer 'hidden': nan.npy holds 1 NaN or infinite value(s); "
        "every value must be finite"
    ]


def test_paths_out_of_the_spec_folder_are_refused(problems, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.npy"
    np.save(outside, np.zeros(2))
    os.symlink(outside, tmp_path / "link.npy")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "ok.npy", np.zeros(2))
    for name, message in [
        (
            str(outside),
            f"{str(outside)!r} is an absolute path; copy {outside.name} into the spec's folder ({tmp_path}) and write "
            f"{outside.name!r}",
        ),
        (
            str(tmp_path / "ok.npy"),
            f"{str(tmp_path / 'ok.npy')!r} is an absolute path; write 'ok.npy', relative to the spec's folder",
        ),
        (
            f"../{outside.name}",
            f"'../{outside.name}' leads outside the spec's folder ({tmp_path}); keep weight files beside the spec",
        ),
        ("link.npy", f"'link.npy' leads outside the spec's folder ({tmp_path}); keep weight files beside the spec"),
    ]:
        text = spec_text(bias=f"{{file: '{name}'}}")
        assert problems(text) == [f"{where(text, '{file')}: NS207 layers[0].bias: layer 'hidden': {message}"]
    assert problems(spec_text(bias="{file: sub/../ok.npy}")) == []


def test_weights_file_takes_precedence_and_is_keyed_by_layer(write_spec, tmp_path):
    arrays = {"hidden.weights": np.ones((2, 3)), "output.bias": np.array([3.0, 4.0])}
    np.savez(tmp_path / "trained.npz", **arrays)
    path = write_spec(spec_text("zeros").replace("classes:", "weights_file: trained.npz\nclasses:"))
    network = netspec.load(path)
    np.testing.assert_array_equal(network.layers[0].params["weights"], np.ones((2, 3)))
    np.testing.assert_array_equal(network.layers[0].params["bias"], [0, 0])  # not in the file: from the spec
    np.testing.assert_array_equal(network.layers[1].params["bias"], [3, 4])


def test_weights_file_mismatches_are_listed(problems, tmp_path):
    np.savez(tmp_path / "trained.npz", **{"hidden.weights": np.ones((2, 4)), "hiden.bias": np.zeros(2)})
    text = spec_text().replace("classes:", "weights_file: trained.npz\nclasses:")
    # The misfit is said at the layer (its neurons or inputs changed, most likely), the stray key at the file.
    assert problems(text) == [
        f"{where(text, 'trained.npz')}: NS210 weights_file: trained.npz holds 'hiden.bias', which matches no layer "
        "parameter; expected keys: hidden.weights, hidden.bias, output.weights, output.bias",
        f"{where(text, 'name: hidden')}: NS204 layers[0]: layer 'hidden': trained.npz['hidden.weights'] "
        "rows have 4 values but the layer receives 3 inputs",
    ]


def test_a_layer_renamed_away_from_its_arrays_is_named_at_its_name(problems, tmp_path):
    np.savez(tmp_path / "trained.npz", **{"hidden.weights": np.ones((2, 3)), "hidden.bias": np.zeros(2)})
    text = spec_text().replace("name: hidden", "name: hiddn").replace("classes:", "weights_file: trained.npz\nclasses:")
    assert problems(text) == [
        f"{where(text, 'hiddn')}: NS210 layers[0].name: trained.npz holds 'hidden.weights' and 'hidden.bias', but "
        "no layer is named 'hidden' and layer 'hiddn' has no arrays there; was it renamed? Name the layer 'hidden' "
        "again, or rename the arrays"
    ]


def test_the_keys_expected_are_listed_up_to_eight(problems, tmp_path):
    np.savez(tmp_path / "trained.npz", **{"stray.weights": np.ones(2)})
    layers = "".join(f"  - {{name: d{k}, type: dense, neurons: 2}}\n" for k in range(5))
    text = f"netspec: 1\nclasses: [a, b]\ninput: {{features: 3}}\nweights_file: trained.npz\nlayers:\n{layers}"
    assert problems(text) == [
        f"{where(text, 'trained.npz')}: NS210 weights_file: trained.npz holds 'stray.weights', which matches no "
        "layer parameter; expected keys: d0.weights, d0.bias, d1.weights, d1.bias, d2.weights, d2.bias, d3.weights, "
        "d3.bias, … (2 more)",
    ]


def test_parameter_limit_is_checked_before_allocating(problems):
    text = (
        spec_text()
        .replace("neurons: 2\n    weights", "neurons: 100000000\n    weights")
        .replace("{features: 3}", "{features: 1000}")
    )
    tracemalloc.start()
    found = problems(text)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # hidden: 1e8 neurons x 1000 inputs + 1e8 biases; output: 2 x 1e8 + 2.
    assert found == [
        f"{where(text, 'name: hidden')}: NS208 layers[0]: the network has 100,300,000,002 parameters, more than the limit "
        "of 50,000,000 (layer 'hidden' alone has 100,100,000,000); make layers smaller or raise the limit (--max-params, or max_params= in Python)"
    ]
    assert peak < 50_000_000  # nothing near the 400 GB the arrays would take


def test_checking_draws_no_initial_values_that_cannot_hold_a_problem(problems):
    """`netspec validate` on a large network reads its files but draws no he_uniform weights."""
    text = spec_text("he_uniform").replace("neurons: 2\n    weights", "neurons: 4000\n    weights")
    text = text.replace("{features: 3}", "{features: 10000}")
    tracemalloc.start()
    found = problems(text)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found == []
    assert peak < 5_000_000  # drawn, the 40,000,000 weights would take 320 MB in float64


def test_checking_draws_what_could_break_a_rule(problems):
    # A variance may not be negative: a variance from he_normal is drawn, and found to have some.
    text = CNN.replace(
        "  - {type: flatten}\n", "  - {name: norm, type: batchnorm, var: he_normal}\n  - {type: flatten}\n"
    )
    assert problems(text) == [
        f"{where(text, 'he_normal')}: NS104 layers[3].var: layer 'norm': var holds negative values; a variance is never below 0"
    ]


def test_max_params_can_be_lowered(problems):
    assert [p.split(": ", 1)[1][:5] for p in problems(spec_text(), max_params=10)] == ["NS208"]


def test_build_from_code_uses_base_dir(tmp_path):
    np.save(tmp_path / "b.npy", np.array([1.0, 2.0]))
    spec = netspec.Spec.model_validate(
        {
            "netspec": 1,
            "classes": ["a", "b"],
            "input": {"features": 1},
            "layers": [{"type": "dense", "neurons": 2, "bias": {"file": "b.npy"}}],
        }
    )
    np.testing.assert_array_equal(netspec.build(spec, base_dir=tmp_path).layers[0].params["bias"], [1, 2])


def test_values_beyond_the_dtype_are_refused(problems, tmp_path):
    # float32 holds up to about 3.4e38: 1e300 would silently become inf.
    text = spec_text("1.0e+300")
    assert problems(text) == [
        f"{where(text, '1.0e+300')}: NS106 layers[0].weights: layer 'hidden': weights holds values beyond what float32 "
        "can hold (about ±3.4e+38); use smaller values or dtype: float64"
    ]
    assert problems(text.replace("netspec: 1", "netspec: 1\ndtype: float64")) == []
    np.save(tmp_path / "huge.npy", np.full(2, 1e300))
    assert [p.split(" ")[1] for p in problems(spec_text(bias="{file: huge.npy}"))] == ["NS106"]
    text = spec_text("{init: uniform, low: -1.0e+308, high: 1.0e+308}")
    assert problems(text) == [
        f"{where(text, '{init: uniform')}: NS104 layers[0].weights: layer 'hidden': weights: the initializer's range is too wide to draw numbers from"
    ]


def test_problems_of_weights_file_arrays_point_at_the_file(problems, tmp_path):
    text = (
        "netspec: 1\nclasses: [a, b]\ninput: {features: 2}\nweights_file: trained.npz\nlayers:\n"
        "  - {name: norm, type: batchnorm}\n  - {name: out, type: dense, neurons: 2}\n"
    )
    np.savez(tmp_path / "trained.npz", **{"norm.var": np.array([1.0, -1.0])})
    assert problems(text) == [
        f"{where(text, 'trained.npz')}: NS104 weights_file: layer 'norm': var (trained.npz holds it as norm.var) "
        "holds negative values; a variance is never below 0"
    ]


def test_values_too_large_even_for_float64_are_not_told_to_use_float64(problems):
    text = spec_text("{init: normal, std: 1.0e+308}").replace("netspec: 1", "netspec: 1\ndtype: float64")
    assert problems(text) == [
        f"{where(text, '{init: normal')}: NS106 layers[0].weights: layer 'hidden': weights holds values beyond what "
        "float64 can hold (about ±1.8e+308); use smaller values"
    ]


def test_a_weight_file_that_is_a_folder(problems, tmp_path):
    (tmp_path / "arrays").mkdir()
    text = spec_text(bias="{file: arrays}")
    assert problems(text) == [
        f"{where(text, '{file: arrays}')}: NS203 layers[0].bias: layer 'hidden': 'arrays' is a folder, not a .npy or .npz file"
    ]


def test_nul_in_a_path_is_refused(problems):
    text = spec_text(bias='{file: "a\\0b.npy"}')
    assert problems(text) == [
        f"{where(text, '{file')}: NS207 layers[0].bias: layer 'hidden': 'a\\x00b.npy' holds a NUL character; give a plain file name"
    ]


def test_layer_seed_is_used_when_the_initializer_has_none(write_spec):
    text = SPEC.replace("WEIGHTS", "he_normal").replace("BIAS", "0\n    seed: 11")
    first = netspec.load(write_spec(text)).layers[0].params["weights"]
    again = (
        netspec.load(write_spec(text.replace("classes: [a, b]", "seed: 99\nclasses: [a, b]")))
        .layers[0]
        .params["weights"]
    )
    np.testing.assert_array_equal(first, again)  # the spec's seed does not matter once the layer has one
    other = netspec.load(write_spec(text.replace("seed: 11", "seed: 12"))).layers[0].params["weights"]
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=">f8").reshape(2, 3),  # big-endian
        np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        np.arange(6, dtype=np.float16).reshape(2, 3),
        np.arange(6, dtype=np.int32).reshape(2, 3),
    ],
    ids=["big-endian", "fortran-order", "float16", "int32"],
)
def test_numeric_npy_files_of_any_layout_load_exactly(write_spec, tmp_path, array):
    np.save(tmp_path / "w.npy", array)
    weights = netspec.load(write_spec(spec_text("{file: w.npy}"))).layers[0].params["weights"]
    np.testing.assert_array_equal(weights, np.arange(6).reshape(2, 3))


def test_npy_with_a_key_and_truncated_npy(problems, tmp_path):
    np.save(tmp_path / "b.npy", np.zeros(2))
    text = spec_text(bias="{file: b.npy, key: b}")
    assert problems(text)[0].endswith(
        "NS206 layers[0].bias: layer 'hidden': b.npy is a .npy file holding one array; remove 'key: b'"
    )
    (tmp_path / "cut.npy").write_bytes((tmp_path / "b.npy").read_bytes()[:-4])
    assert problems(spec_text(bias="{file: cut.npy}"))[0].endswith(
        "NS203 layers[0].bias: layer 'hidden': cut.npy is truncated: its header promises 2 values"
    )


def test_weights_file_missing_or_not_npz(problems, tmp_path):
    text = spec_text().replace("classes:", "weights_file: gone.npz\nclasses:")
    assert problems(text) == [
        f"{where(text, 'gone.npz')}: NS202 weights_file: weight file 'gone.npz' not found in {tmp_path}"
    ]
    (tmp_path / "text.npz").write_text("not a zip")
    text = spec_text().replace("classes:", "weights_file: text.npz\nclasses:")
    assert problems(text)[0].startswith(
        f"{where(text, 'text.npz')}: NS203 weights_file: cannot read text.npz as a .npz file"
    )


CNN = """\
netspec: 1
classes: [a, b]
input: {image: {width: 8, height: 8, color: grayscale}}
layers:
  - {name: conv1, type: conv2d, filters: 4, kernel: 3, activation: relu}
  - {name: pool1, type: maxpool2d, size: 2}
  - {name: conv2, type: conv2d, filters: 8, kernel: 3, padding: same}
  - {type: flatten}
  - {name: out, type: dense, neurons: 2, activation: softmax}
"""


def test_cnn_shapes_follow_the_layers(write_spec):
    network = netspec.load(write_spec(CNN))
    assert [(layer.name, layer.output_shape) for layer in network.layers] == [
        ("conv1", (4, 6, 6)),  # 8 - 3 + 1
        ("pool1", (4, 3, 3)),
        ("conv2", (8, 3, 3)),  # same: padded to keep 3×3
        ("flatten_3", (72,)),
        ("out", (2,)),
    ]
    assert network.layers[2].params["weights"].shape == (8, 4, 3, 3)


def test_a_kernel_larger_than_its_input_says_so_in_the_authors_terms(problems):
    text = CNN.replace("kernel: 3, padding: same", "kernel: 5")
    assert problems(text) == [
        f"{where(text, '5}')}: NS126 layers[2].kernel: layer conv2: a 5×5 kernel does not fit the 3×3 input from pool1 "
        "(try padding: same or a smaller kernel)"
    ]


def test_a_window_too_large_for_the_network_input_reads_as_english(problems):
    # 'an 11×11', not 'a 11×11'; and the network's own input is 'the 8×8 input', not '... input from the input'.
    text = CNN.replace(
        "{name: conv1, type: conv2d, filters: 4, kernel: 3", "{name: conv1, type: conv2d, filters: 4, kernel: 11"
    )
    assert problems(text) == [
        f"{where(text, '11,', '11')}: NS126 layers[0].kernel: layer conv1: an 11×11 kernel does not fit the 8×8 input "
        "(try padding: same or a smaller kernel)"
    ]
    text = CNN.replace("{name: pool1, type: maxpool2d, size: 2}", "{name: pool1, type: maxpool2d, size: 8}")
    assert problems(text) == [
        f"{where(text, '8}', '8')}: NS126 layers[1].size: layer pool1: an 8×8 window does not fit the 6×6 input from conv1 "
        "(try padding: same or a smaller size)"
    ]


@pytest.mark.parametrize(
    "phrase, said",
    [
        ("5×5 kernel", "a 5×5 kernel"),
        ("8×8 input", "an 8×8 input"),
        ("11×11 kernel", "an 11×11 kernel"),
        ("18 numbers", "an 18 numbers"),
        ("110×3", "a 110×3"),  # one hundred ten
        ("11,000 values", "an 11,000 values"),  # eleven thousand
        ("180,000 values", "a 180,000 values"),  # one hundred eighty thousand
        ("800 pixels", "an 800 pixels"),
        ("1×1 window", "a 1×1 window"),
        ("int", "an int"),
        ("float", "a float"),
    ],
)
def test_with_article_follows_how_the_number_is_said(phrase, said):
    assert with_article(phrase) == said


def test_dense_after_a_spatial_layer_needs_flatten(problems):
    text = CNN.replace("  - {type: flatten}\n", "")
    assert problems(text) == [
        f"{where(text, '{name: out')}: NS126 layers[3]: layer out: gets an 8×3×3 output from conv2; add a layer {{type: flatten}} before it"
    ]


def test_image_layers_need_an_image(problems):
    text = "netspec: 1\nclasses: [a, b]\ninput: {features: 4}\nlayers:\n  - {name: c, type: conv2d, filters: 2, kernel: 1}\n  - {type: flatten}\n  - {type: dense, neurons: 2}\n"
    assert problems(text) == [
        f"{where(text, '{name: c')}: NS126 layers[0]: layer c: needs an image-shaped input (channels, height, width), but gets 4 numbers from the input; image layers go before any flatten, on an image input"
    ]


def test_the_output_must_be_one_score_per_class(problems):
    text = CNN.replace("  - {type: flatten}\n  - {name: out, type: dense, neurons: 2, activation: softmax}\n", "")
    assert problems(text) == [
        f"{where(text, '{name: conv2')}: NS123 layers[2]: the network ends with an 8×3×3 output from conv2, but needs one score per class (2); end with a flatten (or a global_avgpool) and a dense layer of 2 neurons"
    ]


def test_conv_weights_of_the_wrong_shape_name_the_axes(problems, tmp_path):
    np.save(tmp_path / "k.npy", np.zeros((4, 1, 5, 5)))
    text = CNN.replace("kernel: 3, activation: relu}", "kernel: 3, activation: relu, weights: {file: k.npy}}")
    assert problems(text) == [
        f"{where(text, '{file: k.npy}')}: NS204 layers[0].weights: layer 'conv1': k.npy has shape (4, 1, 5, 5) but needs "
        "shape (4, 1, 3, 3) (filter × input channel × kernel row × kernel column)"
    ]


def test_pool_padding_more_than_half_the_window_and_negative_variance(problems):
    text = CNN.replace("{name: pool1, type: maxpool2d, size: 2}", "{name: pool1, type: maxpool2d, size: 2, padding: 2}")
    assert problems(text) == [
        f"{where(text, 'padding: 2', '2')}: NS126 layers[1].padding: layer pool1: padding 2 is more than half the 2×2 window, "
        "so some windows would hold padding only; use at most half the window size"
    ]
    text = CNN.replace(
        "  - {type: flatten}\n",
        "  - {name: norm, type: batchnorm, var: [1, -1, 1, 1, 1, 1, 1, 1]}\n  - {type: flatten}\n",
    )
    assert problems(text) == [
        f"{where(text, '[1, -1')}: NS104 layers[3].var: layer 'norm': var holds negative values; a variance is never below 0"
    ]


def test_a_layer_output_too_large_for_memory(problems):
    text = CNN.replace("kernel: 3, padding: same}", "kernel: 3, padding: 20000}")
    assert problems(text) == [
        f"{where(text, '{name: conv2')}: NS126 layers[2]: layer conv2: its output would hold 12,800,640,008 values per input "
        "(8×40001×40001), more than 50,000,000; check its size, padding and stride"
    ]


def test_flattened_batches_are_accepted_by_image_networks(write_spec):
    network = netspec.load(write_spec(CNN))
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8))
    np.testing.assert_array_equal(network.forward(x.reshape(3, 64)), network.forward(x))
    assert network.forward(np.zeros((0, 1, 8, 8))).shape == (0, 2)


def test_groups_must_divide_the_filters_and_the_input_channels(problems):
    conv2 = "{name: conv2, type: conv2d, filters: 8, kernel: 3, padding: same}"
    text = CNN.replace(conv2, "{name: conv2, type: conv2d, filters: 6, kernel: 3, padding: same, groups: 4}")
    assert problems(text) == [
        f"{where(text, 'groups: 4', '4')}: NS131 layers[2].groups: groups 4 does not divide the 6 filters; "
        "use 4 or 8 filters, or groups 1, 2, 3 or 6"
    ]
    # conv2 reads pool1's 4 channels.
    text = CNN.replace(conv2, "{name: conv2, type: conv2d, filters: 6, kernel: 3, padding: same, groups: 3}")
    assert problems(text) == [
        f"{where(text, 'groups: 3', '3')}: NS131 layers[2].groups: layer conv2: groups 3 does not divide the 4 "
        "channels of the input from pool1; use groups 1, 2 or 4"
    ]
    text = CNN.replace(
        "{name: conv1, type: conv2d, filters: 4, kernel: 3,",
        "{name: conv1, type: conv2d, filters: 4, kernel: 3, groups: 2,",
    )
    assert problems(text) == [
        f"{where(text, 'groups: 2', '2')}: NS131 layers[0].groups: layer conv1: groups 2 does not divide the 1 "
        "channel of the input; use groups 1"
    ]


def test_grouped_and_depthwise_weights_have_a_channel_per_group_and_count_as_pytorch(write_spec):
    torch = pytest.importorskip("torch")
    text = CNN.replace(
        "{name: conv2, type: conv2d, filters: 8, kernel: 3, padding: same}",
        "{name: conv2, type: conv2d, filters: 8, kernel: 3, padding: same, groups: 4}\n"
        "  - {name: depthwise, type: conv2d, filters: 8, kernel: 3, groups: 8, padding: 1}",
    )
    network = netspec.load(write_spec(text))
    grouped, depthwise = network.layers[2], network.layers[3]
    assert grouped.params["weights"].shape == (8, 1, 3, 3) and depthwise.params["weights"].shape == (8, 1, 3, 3)
    for node, module in [
        (grouped, torch.nn.Conv2d(4, 8, 3, padding=1, groups=4)),
        (depthwise, torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)),
    ]:
        assert node.param_count == sum(p.numel() for p in module.parameters())  # 8·9 weights + 8 biases
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(module.weight)
        assert node.kind.fans(node.spec, node.input_shapes) == (fan_in, fan_out)
        # One multiply-add per weight and output position: 8 filters · 3·3 outputs · 1 channel · 9.
        assert node.kind.multiply_adds(node.spec, node.input_shapes) == module.weight.numel() * 3 * 3


def test_a_depthwise_conv_over_32_channels_has_32_kernels_and_32_biases(write_spec):
    text = (
        "netspec: 1\nclasses: [a, b]\ninput: {image: {width: 5, height: 5, color: grayscale}}\nlayers:\n"
        "  - {type: conv2d, filters: 32, kernel: 1}\n  - {type: conv2d, filters: 32, kernel: 3, groups: 32}\n"
        "  - {type: global_avgpool}\n  - {type: dense, neurons: 2}\n"
    )
    assert netspec.load(write_spec(text)).layers[1].param_count == 32 * 9 + 32


def test_padding_per_side_and_ceil_mode_are_checked_where_written(problems):
    pool1 = "{name: pool1, type: maxpool2d, size: 2}"
    text = CNN.replace(pool1, "{name: pool1, type: maxpool2d, size: 2, padding: [1, 2, 3]}")
    assert problems(text) == [
        f"{where(text, '[1, 2, 3]')}: NS105 layers[1].padding: must be valid, same, a number of pixels (0 or more), "
        "[height, width] or [top, bottom, left, right], got [1, 2, 3]"
    ]
    text = CNN.replace(pool1, "{name: pool1, type: maxpool2d, size: 2, padding: [0, 2, 0, 0], ceil_mode: true}")
    assert problems(text) == [
        f"{where(text, '[0, 2')}: NS126 layers[1].padding: layer pool1: padding [0, 2, 0, 0] puts 2 pixels at the "
        "bottom, more than half the 2×2 window, so some windows would hold padding only; use at most half the "
        "window size on each side"
    ]
    text = CNN.replace(pool1, "{name: pool1, type: maxpool2d, size: 2, ceil_mode: 1}")
    assert problems(text) == [
        f"{where(text, 'ceil_mode: 1', '1')}: NS103 layers[1].ceil_mode: must be true or false, got 1"
    ]


def test_ceil_mode_and_padding_per_side_shape_the_output(write_spec):
    # conv1 gives 4×6×6. ceil((6 - 3) / 2) + 1 = 3 windows a side (2 without ceil_mode).
    text = CNN.replace(
        "{name: pool1, type: maxpool2d, size: 2}", "{name: pool1, type: maxpool2d, size: 3, stride: 2, ceil_mode: true}"
    )
    assert netspec.load(write_spec(text)).layers[1].output_shape == (4, 3, 3)
    # [top, bottom, left, right] on conv2: height 3 + 0 + 2 - 3 + 1 = 3, width 3 + 1 + 0 - 3 + 1 = 2.
    text = CNN.replace("kernel: 3, padding: same}", "kernel: 3, padding: [0, 2, 1, 0]}")
    assert netspec.load(write_spec(text)).layers[2].output_shape == (8, 3, 2)
