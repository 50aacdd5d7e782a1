"""Validation of spec fields and whole-network rules: every rule's code, path, message and line."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

import netspec
from netspec import Spec

from conftest import VALID, where


def test_valid_spec_has_no_problems(problems):
    assert problems(VALID) == []


def test_issue_example_neurons_below_one(problems):
    text = VALID.replace("neurons: 4", "neurons: 0")
    assert problems(text) == [f"{where(text, 'neurons: 0', '0')}: NS104 layers[0].neurons: must be at least 1, got 0"]


def test_block_style_error_is_located_at_the_value(problems):
    text = """\
    netspec: 1
    classes: [a, b]
    input: {features: 2}
    layers:
      - name: first
        type: dense
        neurons: 2
      - name: second
        type: dense
        neurons: 0
    """
    assert problems(text) == ["spec.yaml:10:14: NS104 layers[1].neurons: must be at least 1, got 0"]


def test_unknown_key_suggests_the_right_one_and_hides_the_missing_one(problems):
    text = VALID.replace("neurons: 4", "nuerons: 4")
    assert problems(text) == [
        f"{where(text, 'nuerons')}: NS101 layers[0].nuerons: unknown key 'nuerons'; did you mean 'neurons'?"
    ]


def test_unknown_key_without_a_close_match_lists_the_allowed_keys(problems):
    assert problems(VALID + "colour: red\n") == [
        "spec.yaml:9:1: NS101 colour: unknown key 'colour'; allowed keys are: netspec, name, description, classes, "
        "input, seed, dtype, weights_file, blocks, layers, training"
    ]


def test_missing_required_key_says_what_it_is(problems):
    text = VALID.replace("classes: [cat, dog]\n", "")
    assert problems(text) == [
        "spec.yaml:1:1: NS102 classes: missing required key 'classes' "
        "(output labels, in output order: the output layer has one neuron per class; or {file: labels.txt})"
    ]


def test_boolean_is_never_a_number(problems):
    # YAML 1.2 reads `yes` as text; `true` is a boolean; neither becomes 1.
    text = VALID.replace("neurons: 4", "neurons: yes")
    assert problems(text) == [
        f"{where(text, 'yes')}: NS103 layers[0].neurons: must be a whole number, got 'yes' (text)"
    ]
    text = VALID.replace("neurons: 4", "neurons: true")
    assert problems(text) == [
        f"{where(text, 'true')}: NS103 layers[0].neurons: must be a whole number, got true (a boolean)"
    ]


def test_quoted_number_is_not_a_number(problems):
    text = VALID.replace("neurons: 4", "neurons: '4'")
    quoted = where(text, "'4'")
    assert problems(text) == [f"{quoted}: NS103 layers[0].neurons: must be a whole number, got '4' (text)"]


def test_scientific_notation_is_a_number(problems):
    text = VALID.replace("activation: relu}", "activation: relu, weights: {init: normal, std: 1e-3}}")
    assert problems(text) == []


def test_unknown_activation_suggests(problems):
    text = VALID.replace("activation: relu", "activation: rleu")
    assert problems(text) == [
        f"{where(text, 'rleu')}: NS105 layers[0].activation: must be one of linear, relu, leaky_relu, sigmoid, tanh, softmax, relu6, "
        "hard_sigmoid, hard_swish, silu, gelu, elu, "
        "got 'rleu' (text); did you mean 'relu'?"
    ]


def test_unknown_initializer_by_name_and_in_a_mapping(problems):
    text = VALID.replace("activation: relu}", "activation: relu, weights: he_unifrom, bias: {init: zeroes}}")
    assert problems(text) == [
        f"{where(text, 'he_unifrom')}: NS105 layers[0].weights: unknown initializer 'he_unifrom'; did you mean 'he_uniform'?",
        f"{where(text, 'zeroes')}: NS105 layers[0].bias.init: unknown initializer 'zeroes'; did you mean 'zeros'?",
    ]


def test_initializer_parameters_are_checked(problems):
    text = VALID.replace("activation: relu}", "activation: relu, weights: {init: normal, stdev: 1}}")
    assert problems(text) == [
        f"{where(text, 'stdev')}: NS101 layers[0].weights.stdev: unknown key 'stdev'; did you mean 'std'?"
    ]
    text = VALID.replace("activation: relu}", "activation: relu, weights: {init: uniform, low: 1, high: 0}}")
    assert problems(text) == [
        f"{where(text, 'high: 0', '0')}: NS104 layers[0].weights.high: must be above low, got low=1 and high=0"
    ]
    text = VALID.replace("activation: relu}", "activation: relu, weights: {init: normal, std: 0}}")
    assert problems(text) == [f"{where(text, 'std: 0', '0')}: NS104 layers[0].weights.std: must be above 0, got 0"]


def test_mapping_without_init_or_file(problems):
    text = VALID.replace("activation: relu}", "activation: relu, weights: {std: 1}}")
    assert problems(text) == [
        f"{where(text, '{std: 1}')}: NS102 layers[0].weights: this mapping needs 'init' (an initializer by name) or 'file' (a weight file)"
    ]


def test_weights_of_the_wrong_kind(problems):
    text = VALID.replace("activation: relu}", "activation: relu, weights: true}")
    assert problems(text) == [
        f"{where(text, 'true')}: NS103 layers[0].weights: must be a number, an initializer name, a list of numbers, "
        "or a mapping with 'init' or 'file'"
    ]


def test_non_finite_numbers_are_refused_with_their_index(problems):
    text = VALID.replace("activation: relu}", "activation: relu, bias: [0, .inf, 0, 0]}")
    assert problems(text) == [f"{where(text, '.inf')}: NS106 layers[0].bias[1]: must be a finite number, got inf"]


def test_an_integer_beyond_any_float_is_one_located_error_in_a_list_as_alone(problems):
    big = "1" + "0" * 400
    text = VALID.replace("activation: relu}", f"activation: relu, bias: [0, {big}, 0, 0]}}")
    assert problems(text) == [
        f"{where(text, big)}: NS103 layers[0].bias[1]: must be a number, got a number with 401 digits"
    ]
    text = VALID.replace("activation: relu}", f"activation: relu, bias: {big}}}")
    assert problems(text) == [
        f"{where(text, big)}: NS103 layers[0].bias: must be a number, got a number with 401 digits"
    ]


def test_unknown_layer_type_and_missing_type(problems):
    text = VALID.replace("type: dense, neurons: 4", "type: dens, neurons: 4")
    assert problems(text) == [
        f"{where(text, 'dens,')}: NS105 layers[0].type: unknown layer type 'dens'; did you mean 'dense'?"
    ]
    text = VALID.replace("type: dense, neurons: 4", "neurons: 4")
    assert problems(text) == [
        f"{where(text, '{name: hidden')}: NS102 layers[0]: every layer needs a 'type': one of dense, conv2d, maxpool2d, avgpool2d, global_avgpool, flatten, dropout, batchnorm, lrn, channel_shuffle, slice, activation, add, concat, multiply"
    ]


@pytest.mark.parametrize(
    "version, message",
    [
        (2, "format version 2 is newer than this netspec reads; upgrade netspec or write 'netspec: 1'"),
        (0, "format version 0 is unknown; write 'netspec: 1'"),
    ],
)
def test_format_version(problems, version, message):
    assert problems(VALID.replace("netspec: 1", f"netspec: {version}")) == [f"spec.yaml:1:10: NS107 netspec: {message}"]


def test_missing_format_version(problems):
    assert problems(VALID.replace("netspec: 1\n", "")) == [
        "spec.yaml:1:1: NS102 netspec: missing required key 'netspec' (format version of the spec; this release reads 1)"
    ]


def test_duplicate_layer_names(problems):
    text = VALID.replace("name: output", "name: hidden")
    assert problems(text) == [
        f"{where(text, 'hidden, type: dense, neurons: 2')}: NS121 layers[1].name: layer name 'hidden' is already used by layers[0]; give each layer its own name"
    ]


def test_default_names_are_type_and_index():
    spec = Spec.model_validate(
        {"netspec": 1, "classes": ["a"], "input": {"features": 2}, "layers": [{"type": "dense", "neurons": 1}]}
    )
    assert spec.layers[0].name == "dense_0"


def test_duplicate_class_labels(problems):
    text = VALID.replace("[cat, dog]", "[cat, cat]")
    assert problems(text) == [
        f"{where(text, 'cat]')}: NS122 classes[1]: class label 'cat' is listed twice (also classes[0]); keep one"
    ]


def test_output_size_must_match_classes(problems):
    text = VALID.replace("[cat, dog]", "[cat, dog, bird]")
    assert problems(text) == [
        f"{where(text, 'neurons: 2', '2')}: NS123 layers[1].neurons: the output layer has 2 neurons but there are 3 classes; "
        "give the last layer one neuron per class"
    ]


def test_softmax_only_last(problems):
    text = VALID.replace("activation: relu", "activation: softmax")
    assert problems(text) == [
        f"{where(text, 'neurons: 4, activation: softmax', 'softmax')}: NS124 layers[0].activation: softmax is only for the output layer, but layer 'hidden' is not last; "
        "use relu, tanh or sigmoid here"
    ]


def test_layer_name_characters(problems):
    rule = "layer names are ASCII letters, digits, '_' and '-', in parts joined by dots (as layer1.0.conv1)"
    for bad in ("hid den", "hid..den", ".hidden", "hidden.", "hid/den"):
        text = VALID.replace("name: hidden", f"name: '{bad}'")
        quoted = f"'{bad}'"
        assert problems(text) == [f"{where(text, quoted)}: NS103 layers[0].name: {rule}, got {quoted}"], bad
    # Dotted names, as PyTorch names its modules, are names.
    text = VALID.replace("name: hidden", "name: layer1.0.conv1")
    assert problems(text) == []


def test_image_input_rules(problems):
    text = VALID.replace("  features: 3\n", "  image: {width: 4, height: 4, color: grayscale, mean: [0.5, 0.5]}\n")
    assert problems(text) == [
        f"{where(text, '[0.5, 0.5]')}: NS108 input.image.mean: has 2 values but grayscale images have 1 channel; "
        "give one value per channel",
    ]
    # Caffe's mean of pixel values given with the default scale [0, 1]: every image would be far below it.
    image = "  image: {width: 4, height: 4, mean: [123.68, 0.456, 0.406], std: [58.4, 57.1, 57.4]}\n"
    text = VALID.replace("  features: 3\n", image)
    assert problems(text) == [
        f"{where(text, '123.68')}: NS104 input.image.mean[0]: is 123.68, outside the scale [0, 1] pixels are mapped "
        "onto before it is subtracted; give the mean of the scaled values (ImageNet's red: 0.485 on [0, 1]), or "
        "scale: [0, 255] for a mean of pixel values",
    ]
    text = VALID.replace("  features: 3\n", image.replace("height: 4,", "height: 4, scale: [0, 255],"))
    assert problems(text) == []
    text = VALID.replace("  features: 3\n", "  image: {width: 4, height: 4, scale: [0], std: [1, 0, 1]}\n")
    assert problems(text) == [
        f"{where(text, '[0]')}: NS108 input.image.scale: must have exactly 2 values, got 1",
        f"{where(text, '0, 1]', '0')}: NS104 input.image.std[1]: must be above 0, got 0",
    ]


def test_feature_input_mean_and_std(problems):
    text = VALID.replace("  features: 3\n", "  features: {size: 3, mean: [0.5, 1.5, -2], std: 2.5}\n")
    assert problems(text) == []
    text = VALID.replace("  features: 3\n", "  features: {size: 3, mean: [0.5, 0.5], std: [1, 0, 1]}\n")
    assert problems(text) == [f"{where(text, '0, 1]', '0')}: NS104 input.features.std[1]: must be above 0, got 0"]
    text = VALID.replace("  features: 3\n", "  features:\n    size: 3\n    mean: [0.5, 0.5]\n    std: 0.5\n")
    assert problems(text) == [
        f"{where(text, '[0.5, 0.5]')}: NS108 input.features.mean: has 2 values but the input has 3 features; "
        "give one value per feature, or one number for all"
    ]
    text = VALID.replace("  features: 3\n", "  features: {size: 3, mean: low, sdt: 1}\n")
    assert problems(text) == [
        f"{where(text, 'low')}: NS103 input.features.mean: must be a number, got 'low' (text)",
        f"{where(text, 'sdt')}: NS101 input.features.sdt: unknown key 'sdt'; did you mean 'std'?",
    ]
    text = VALID.replace("  features: 3\n", "  features: three\n")
    assert problems(text) == [
        f"{where(text, 'three')}: NS103 input.features: must be a whole number (how many features) "
        "or a mapping with size, mean and std"
    ]


def test_input_takes_exactly_one_kind(problems):
    text = VALID.replace("  features: 3\n", "  features: 3\n  image: {width: 4, height: 4}\n")
    assert problems(text) == ["spec.yaml:5:3: NS102 input: input takes exactly one of 'image' or 'features'"]


def test_numbers_as_class_labels_are_text():
    spec = Spec.model_validate(
        {"netspec": 1, "classes": [0, 1], "input": {"features": 2}, "layers": [{"type": "dense", "neurons": 2}]}
    )
    assert spec.classes == ["0", "1"]


def test_every_field_problem_is_reported_together(problems):
    text = """\
    netspec: 1
    clases: [a, b]
    input: {features: 0}
    layers:
      - {type: dense, neurons: -1, activation: rleu}
    """
    assert problems(text) == [
        "spec.yaml:2:1: NS101 clases: unknown key 'clases'; did you mean 'classes'?",
        "spec.yaml:3:19: NS104 input.features: must be at least 1, got 0",
        "spec.yaml:5:28: NS104 layers[0].neurons: must be at least 1, got -1",
        "spec.yaml:5:44: NS105 layers[0].activation: must be one of linear, relu, leaky_relu, sigmoid, tanh, softmax, relu6, "
        "hard_sigmoid, hard_swish, silu, gelu, elu, "
        "got 'rleu' (text); did you mean 'relu'?",
    ]


def test_empty_file_and_non_mapping(problems):
    assert problems("") == [
        "spec.yaml:1:1: NS103 a spec is a mapping of keys (netspec, classes, input, layers), got an empty file"
    ]
    assert problems("- 1\n") == [
        "spec.yaml:1:1: NS103 a spec is a mapping of keys (netspec, classes, input, layers), got a list of 1"
    ]
    assert problems("42\n") == [
        "spec.yaml:1:1: NS103 a spec is a mapping of keys (netspec, classes, input, layers), got 42"
    ]
    assert problems("services: {web: {image: nginx}}\n") == [
        "spec.yaml:1:1: NS102 not a netspec spec: it has none of the keys netspec, classes, input, layers"
    ]


def test_spec_file_problems(tmp_path):
    assert [str(p) for p in netspec.check(tmp_path / "nope.yaml")] == [
        f"{tmp_path / 'nope.yaml'}: NS005 spec file not found"
    ]
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert [p.code for p in netspec.check(binary)] == ["NS005"]


def test_spec_model_validate_from_code_raises_pydantic_errors_with_our_rules():
    with pytest.raises(ValidationError, match="the output layer has 1 neurons but there are 2 classes"):
        Spec.model_validate(
            {"netspec": 1, "classes": ["a", "b"], "input": {"features": 2}, "layers": [{"type": "dense", "neurons": 1}]}
        )


def test_empty_text_is_refused(problems):
    text = VALID.replace("[cat, dog]", "[cat, '']")
    empty = where(text, "''")
    assert problems(text) == [f"{empty}: NS109 classes[1]: must not be empty"]


def test_every_code_is_documented_and_every_code_used_is_known():
    import re
    from pathlib import Path

    from netspec.errors import CODES

    root = Path(__file__).resolve().parent.parent
    documented = re.findall(r"^### (NS\d{3}) ", (root / "docs" / "errors.md").read_text(), re.MULTILINE)
    assert documented == sorted(CODES)
    used = {code for path in (root / "netspec").rglob("*.py") for code in re.findall(r'"(NS\d{3})', path.read_text())}
    assert used <= set(CODES)


def test_alpha_only_with_leaky_relu(problems):
    text = VALID.replace("activation: relu}", "activation: relu, alpha: 0.2}")
    assert problems(text) == [
        f"{where(text, '0.2}', '0.2')}: NS125 layers[0].alpha: only leaky_relu and elu take alpha, but the activation is relu; remove alpha or use leaky_relu or elu"
    ]
    assert problems(VALID.replace("activation: relu}", "activation: leaky_relu, alpha: 0.2}")) == []


def test_alpha_only_with_leaky_relu_or_elu_on_every_layer_that_takes_an_activation(problems):
    text = VALID.replace(
        "  - {name: output",
        "  - {name: act, type: activation, activation: relu6, alpha: 0.5}\n"
        "  - {name: norm, type: batchnorm, alpha: 0.25}\n"
        "  - {name: output",
    ).replace("activation: relu}", "activation: relu6, alpha: 0.2}")
    fix = "remove alpha or use leaky_relu or elu"
    assert problems(text) == [
        f"{where(text, '0.2}', '0.2')}: NS125 layers[0].alpha: only leaky_relu and elu take alpha, but the activation is relu6; {fix}",
        f"{where(text, '0.5}', '0.5')}: NS125 layers[1].alpha: only leaky_relu and elu take alpha, but the activation is relu6; {fix}",
        f"{where(text, '0.25}', '0.25')}: NS125 layers[2].alpha: only leaky_relu and elu take alpha, but the activation is linear; {fix}",
    ]
    assert problems(text.replace("relu6", "elu").replace("alpha: 0.25", "activation: leaky_relu, alpha: 0.25")) == []


def test_the_activation_layer_needs_a_known_activation(problems):
    text = VALID.replace("  - {name: output", "  - {name: act, type: activation, activation: gleu}\n  - {name: output")
    assert problems(text) == [
        f"{where(text, 'gleu')}: NS105 layers[1].activation: must be one of linear, relu, leaky_relu, sigmoid, tanh, "
        "softmax, relu6, hard_sigmoid, hard_swish, silu, gelu, elu, got 'gleu' (text); did you mean 'gelu'?"
    ]
    text = VALID.replace("  - {name: output", "  - {name: act, type: activation}\n  - {name: output")
    assert problems(text) == [
        f"{where(text, '{name: act')}: NS102 layers[1].activation: missing required key 'activation' "
        "(function applied to each value of the input)"
    ]


def test_softmax_only_last_on_the_activation_layer_and_batchnorm_too(problems):
    text = VALID.replace(
        "  - {name: output",
        "  - {name: act, type: activation, activation: softmax}\n  - {name: norm, type: batchnorm, activation: softmax}\n"
        "  - {name: output",
    )
    use = "use relu, tanh or sigmoid here"
    assert problems(text) == [
        f"{where(text, 'activation, activation: softmax', 'softmax')}: NS124 layers[1].activation: softmax is only "
        f"for the output layer, but layer 'act' is not last; {use}",
        f"{where(text, 'batchnorm, activation: softmax', 'softmax')}: NS124 layers[2].activation: softmax is only "
        f"for the output layer, but layer 'norm' is not last; {use}",
    ]
    last = VALID.replace("activation: softmax}", "activation: linear}\n  - {type: activation, activation: softmax}")
    assert problems(last) == []


def test_scale_needs_two_different_values(problems):
    text = VALID.replace("  features: 3\n", "  image: {width: 4, height: 4, scale: [1, 1]}\n")
    assert problems(text) == [
        f"{where(text, '[1, 1]')}: NS104 input.image.scale: needs two different values [lo, hi], got [1, 1]"
    ]
    assert problems(VALID.replace("  features: 3\n", "  image: {width: 1, height: 1, scale: [1, 0]}\n")) == []


def test_suggestions_ignore_case_and_know_other_tools_names(problems):
    text = VALID.replace("activation: relu", "activation: ReLU")
    assert problems(text)[0].endswith("got 'ReLU' (text); did you mean 'relu'?")
    text = VALID.replace("activation: relu}", "activation: relu, weights: xavier_uniform}")
    assert problems(text) == [
        f"{where(text, 'xavier_uniform')}: NS105 layers[0].weights: unknown initializer 'xavier_uniform'; did you mean 'glorot_uniform'?"
    ]


def test_class_labels_are_printable_on_one_line(problems):
    text = VALID.replace("[cat, dog]", '[cat, "dog\\nhouse"]')
    label = where(text, '"dog')
    assert problems(text) == [
        f"{label}: NS103 classes[1]: class labels must be printable text on one line, got 'dog\\nhouse'"
    ]


def test_names_and_types_that_are_not_text(problems):
    text = VALID.replace("type: dense, neurons: 4", "type: 5, neurons: 4")
    assert problems(text) == [
        f"{where(text, '5,')}: NS103 layers[0].type: must be a name (text): one of dense, conv2d, maxpool2d, avgpool2d, global_avgpool, flatten, dropout, batchnorm, lrn, channel_shuffle, slice, activation, add, concat, multiply, got 5"
    ]
    text = VALID.replace("activation: relu}", "activation: relu, weights: {init: null}}")
    assert problems(text) == [
        f"{where(text, 'null')}: NS103 layers[0].weights.init: must be a name (text): one of zeros, ones, uniform, normal, glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_normal, got null"
    ]
    text = VALID.replace("  - {name: output", "  - [output, dense]\n  - {name: output")
    assert (
        problems(text)[0]
        == f"{where(text, '[output')}: NS103 layers[1]: a layer is a mapping of keys (name, type, neurons, ...), got a list of 2"
    )


def test_very_long_numbers_are_shortened(problems):
    text = VALID.replace("neurons: 4", "neurons: " + "9" * 400)
    found = problems(text)
    assert found == [
        f"{where(text, 'neurons: 9', '9')}: NS104 layers[0].neurons: must be at most 2,147,483,647, got a number with 400 digits"
    ]


def test_scale_length_says_exactly_two(problems):
    text = VALID.replace("  features: 3\n", "  image: {width: 1, height: 1, scale: [0, 1, 2]}\n")
    assert problems(text) == [f"{where(text, '[0, 1, 2]')}: NS108 input.image.scale: must have exactly 2 values, got 3"]


def test_model_dump_validates_again_and_callers_objects_are_not_changed():
    from netspec.layers import Dense

    layer = Dense(neurons=2)
    spec = Spec.model_validate({"netspec": 1, "classes": ["a", "b"], "input": {"features": 2}, "layers": [layer]})
    assert layer.name is None and spec.layers[0].name == "dense_0"
    assert Spec.model_validate(spec.model_dump()) == spec
    assert Spec.model_validate_json(spec.model_dump_json()) == spec


def test_numpy_scalars_are_numbers():
    import numpy as np

    spec = Spec.model_validate(
        {
            "netspec": 1,
            "classes": ["a", "b"],
            "input": {"features": np.int64(2)},
            "seed": np.int32(4),
            "layers": [{"type": "dense", "neurons": np.int64(2), "bias": np.float32(0.5)}],
        }
    )
    assert (spec.input.features, spec.seed, spec.layers[0].neurons, spec.layers[0].bias) == (2, 4, 2, 0.5)


@pytest.mark.parametrize(
    "layers",
    [
        [{"type": "dense", "neurons": 0}],
        [{"type": "dense", "neurons": 2, "activation": "relux", "wieghts": "zeros"}],
        [{"type": "dense", "neurons": 2, "weights": {"init": "he_unifrom"}, "bias": [1, ".nan"]}],
        [{"type": "dense", "neurons": "2"}, {"type": "dense", "neurons": 2, "name": 7}],
        [{"type": "conv2d", "filters": 2, "kernel": [3, 0]}, {"type": "flatten", "units": 3}, {"type": "dense"}],
        [{"type": "maxpool2d", "size": 2, "stride": -1}, {"type": "batchnorm", "epsilon": 0}, {"type": "dropout"}],
        [{"name": "x", "type": "dense", "neurons": 2}, {"name": "x", "type": "dense", "neurons": 2}],
    ],
)
def test_the_model_for_a_specs_layer_types_finds_what_the_full_model_finds(layers):
    """Specs are read with a model for just their layer types (a faster start): it must judge as the full one."""
    from netspec.spec import model_for
    from netspec.validation import problems_from

    data = {"netspec": 1, "classes": ["a", "b"], "input": {"image": {"width": 8, "height": 8}}, "layers": layers}

    def found(model):
        try:
            model.model_validate(data)
        except ValidationError as err:
            return problems_from(err, model)
        return []

    assert model_for(data) is not Spec
    assert found(model_for(data)) == found(Spec) != []


def test_an_input_key_written_without_a_value_is_said_at_the_key(problems):
    text = VALID.replace("  features: 3", "  features:")  # line 5: the position is where the value would be
    assert problems(text) == ["spec.yaml:5:12: NS103 input.features: must be a whole number, got null"]
    text = VALID.replace("  features: 3", "  image:")
    assert problems(text) == [
        "spec.yaml:5:9: NS103 input.image: must be a mapping of keys to values (width, height, ...), got null"
    ]
    # Written out by code (a dumped spec), a null beside a value is no mistake.
    assert Spec.model_validate({**yaml.safe_load(VALID), "input": {"image": None, "features": 3}}).input.shape == (3,)


def test_unknown_keys_named_like_a_union_tag_are_still_unknown_keys(problems):
    """Found by the mutation property test: 'float64' (a dtype) renamed in for 'netspec' crashed the reader."""
    text = VALID.replace("netspec: 1", "float64: 1").replace("activation: relu}", "activation: relu, dense: 3}")
    assert problems(text) == [
        "spec.yaml:1:1: NS102 netspec: missing required key 'netspec' (format version of the spec; this release reads 1)",
        "spec.yaml:1:1: NS101 float64: unknown key 'float64'; allowed keys are: netspec, name, description, classes, "
        "input, seed, dtype, weights_file, blocks, layers, training",
        f"{where(text, 'dense: 3}', 'dense')}: NS101 layers[0].dense: unknown key 'dense'; allowed keys are: type, name, "
        "inputs, neurons, activation, alpha, weights, use_bias, bias, seed",
    ]


def test_a_window_size_that_is_not_a_number_or_a_pair_says_both_forms(problems):
    text = """\
    netspec: 1
    classes: [a, b]
    input: {image: {width: 4, height: 4}}
    layers:
      - {type: conv2d, filters: 2, kernel: 2.5, stride: abc, padding: true}
      - {type: flatten}
      - {type: dense, neurons: 2}
    """
    assert problems(text) == [
        f"{where(text, '2.5')}: NS103 layers[0].kernel: must be a whole number or [height, width], got 2.5",
        f"{where(text, 'abc')}: NS103 layers[0].stride: must be a whole number or [height, width], got 'abc' (text)",
        f"{where(text, 'true')}: NS105 layers[0].padding: must be valid, same, a number of pixels (0 or more), "
        "[height, width] or [top, bottom, left, right], got true (a boolean)",
    ]
