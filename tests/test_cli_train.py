"""`netspec train` and `netspec eval` from the command line: files written, output, errors, interruption."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from make_flowers import make_dataset  # noqa: E402

SOURCE = (ROOT / "examples" / "rose-vs-lotus.yaml").read_text()


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture(scope="module")
def flowers(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("flowers")
    make_dataset(folder, count_per_class=40, seed=5, size=32)
    return folder


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "rose.yaml"
    path.write_text(SOURCE)
    return path


def test_train_writes_the_same_spec_with_its_weights_file(spec, flowers, tmp_path):
    out = tmp_path / "trained" / "rose.yaml"
    result = invoke("train", spec, flowers, "-o", out, "--epochs", "3")
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert result.stdout.startswith(("best validation accuracy ", "no epoch beat the starting weights"))
    assert result.stdout.rstrip().endswith(f"wrote {out} and {out.with_suffix('.npz')}")
    # Only one line is added: the comments and key order of the spec are kept.
    added = [line for line in out.read_text().splitlines() if line not in SOURCE.splitlines()]
    assert added == ["weights_file: rose.npz   # written by netspec train"]
    assert netspec.check(out) == []
    network = netspec.load(out)
    assert sorted(np.load(out.with_suffix(".npz")).files) == sorted(
        f"{layer}.{param}" for layer in ("hidden1", "hidden2", "output") for param in ("weights", "bias")
    )
    run = invoke("run", out, *sorted((flowers / "red rose").iterdir())[:3], "--json")
    assert run.exit_code == 0 and len(run.stdout.splitlines()) == 3
    assert network.classes == ["red rose", "white lotus"]


def test_training_twice_gives_the_same_arrays(spec, flowers, tmp_path):
    for name in ("a", "b"):
        assert invoke("train", spec, flowers, "-o", tmp_path / name / "out.yaml", "--epochs", "2").exit_code == 0
    first, second = np.load(tmp_path / "a" / "out.npz"), np.load(tmp_path / "b" / "out.npz")
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])


def test_an_existing_weights_file_line_is_replaced(spec, flowers, tmp_path):
    spec.write_text(SOURCE.replace("seed: 7", "seed: 7\nweights_file: 'old.npz'   # from before"))
    np.savez(tmp_path / "old.npz", **{"output.bias": np.array([5.0, -5.0])})
    out = tmp_path / "new.yaml"
    assert invoke("train", spec, flowers, "-o", out, "--epochs", "1", "--fresh").exit_code == 0
    # The value is replaced in place; what follows it on the line (here two comments) stays.
    assert [line for line in out.read_text().splitlines() if line.startswith("weights_file")] == [
        "weights_file: new.npz   # from before" + SOURCE.split("seed: 7", 1)[1].split("\n", 1)[0]
    ]


def test_flags_and_training_section_are_validated_with_locations(spec, flowers, tmp_path):
    spec.write_text(SOURCE.replace("optimizer: adam", "optimizer: adamw"))
    result = invoke("train", spec, flowers, "-o", tmp_path / "out.yaml")
    line = SOURCE.splitlines().index("  optimizer: adam") + 1
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"{spec}:{line}:14: NS105 training.optimizer: must be one of sgd, adam, got 'adamw' (text); did you mean 'adam'?\n"
    )
    result = invoke("train", spec, flowers, "-o", tmp_path / "out.yaml", "--learning-rate", "0")
    assert result.exit_code == 2 and "--learning-rate" in result.stderr


def test_output_may_not_overwrite_an_input(spec, flowers):
    result = invoke("train", spec, flowers, "-o", spec)
    assert result.exit_code == 2 and f"-o {spec} would overwrite {spec}, an input of this run" in result.stderr
    result = invoke("train", spec, flowers, "-o", spec.with_suffix(".txt"))
    assert result.exit_code == 2 and "the trained spec is a .yaml or .yml file" in result.stderr


def test_a_failed_write_leaves_earlier_results_untouched(spec, flowers, tmp_path, monkeypatch):
    out = tmp_path / "out.yaml"
    out.write_text("earlier spec")
    out.with_suffix(".npz").write_bytes(b"earlier arrays")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("netspec.saving.np.lib.format.write_array", disk_full)
    result = invoke("train", spec, flowers, "-o", out, "--epochs", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "netspec: No space left on device"
    assert out.read_text() == "earlier spec" and out.with_suffix(".npz").read_bytes() == b"earlier arrays"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "out.yaml", "rose.yaml"]


@pytest.mark.parametrize("save", [True, False])
def test_ctrl_c_saves_the_best_epoch_so_far_unless_told_not_to(spec, flowers, tmp_path, monkeypatch, save):
    import netspec.train

    real_fit = netspec.train.fit

    def fit_interrupted_in_epoch_2(network, x, y, options, on_batch, on_epoch, threads=None):
        def stop(epoch):
            on_epoch(epoch)
            if epoch.number == 2:
                raise KeyboardInterrupt

        return real_fit(network, x, y, options, on_batch, stop, threads)

    monkeypatch.setattr(netspec.train, "fit", fit_interrupted_in_epoch_2)
    out = tmp_path / "out.yaml"
    flag = "--save-on-interrupt" if save else "--no-save-on-interrupt"
    result = invoke("train", spec, flowers, "-o", out, "--epochs", "10", flag)
    assert result.exit_code == 130
    assert out.exists() is save and out.with_suffix(".npz").exists() is save
    if not save:
        assert result.stderr.splitlines()[-2:] == ["netspec: interrupted", "netspec: nothing written"]


def test_eval_text_and_json(flowers, tmp_path):
    spec = ROOT / "specs" / "rose-vs-lotus.yaml"
    result = invoke("eval", spec, flowers)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "accuracy 100.00% (80 of 80)"
    assert lines[2:5] == [
        "class        precision  recall      f1  support",
        "red rose         1.000   1.000   1.000       40",
        "white lotus      1.000   1.000   1.000       40",
    ]
    assert lines[-3:] == [
        "                red rose  white lotus",
        "red rose              40            0",
        "white lotus            0           40",
    ]
    data = json.loads(invoke("eval", spec, flowers, "--json").stdout)
    assert data["accuracy"] == 1.0 and data["confusion"] == [[40, 0], [0, 40]]
    assert data["classes"]["red rose"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 40}


def test_data_folder_problems_are_all_listed(spec, flowers, tmp_path):
    data = tmp_path / "data"
    (data / "red rose").mkdir(parents=True)
    (data / "roses").mkdir()
    (data / ".cache").mkdir()
    result = invoke("eval", ROOT / "specs" / "rose-vs-lotus.yaml", data)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{data}: NS401 no folder for class 'white lotus'; put its images in {data / 'white lotus'}",
        f"{data / 'roses'}: NS402 folder 'roses' is not one of the classes (red rose, white lotus); did you mean 'red rose'?",
    ]


def test_unreadable_images_are_skipped_with_a_warning_or_fail_with_strict(flowers, tmp_path):
    data = tmp_path / "data"
    for label in ("red rose", "white lotus"):
        (data / label).mkdir(parents=True)
        for source in sorted((flowers / label).iterdir())[:2]:
            (data / label / source.name).write_bytes(source.read_bytes())
    # Files not named as images are not data (as in torchvision's ImageFolder): left alone, even with --strict.
    (data / "red rose" / "notes.txt").write_text("not a picture")
    spec = ROOT / "specs" / "rose-vs-lotus.yaml"
    result = invoke("eval", spec, data, "--strict")
    assert (result.exit_code, result.stderr) == (0, "") and result.stdout.startswith("accuracy 100.00% (4 of 4)")
    (data / "red rose" / "torn.png").write_text("named as a picture, but not one")
    result = invoke("eval", spec, data)
    assert result.exit_code == 0 and result.stdout.startswith("accuracy 100.00% (4 of 4)")
    assert (
        result.stderr
        == f"warning: {data / 'red rose' / 'torn.png'}: NS302 not an image netspec reads (PNG, JPEG, BMP, GIF, TIFF, WEBP) (skipped)\n"
    )
    result = invoke("eval", spec, data, "--strict")
    assert result.exit_code == 1 and "NS302" in result.stderr


def test_training_problems_name_the_flag_that_caused_them(tmp_path):
    spec = tmp_path / "xor.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [same, different]\ninput: {features: 2}\n"
        "layers:\n  - {name: o, type: dense, neurons: 2, activation: softmax}\n"
        "training: {optimizer: adam, epochs: 2, patience: 3}\n"
    )
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 4, dtype=np.float32)
    np.savez(tmp_path / "xor.npz", x=x, y=np.array([0, 1, 1, 0] * 4))
    out = tmp_path / "out.yaml"
    result = invoke("train", spec, tmp_path / "xor.npz", "-o", out, "--momentum", "0.5")
    assert (result.exit_code, result.stderr) == (
        1,
        "NS125 --momentum 0.5: only sgd takes momentum, but the optimizer is adam; leave momentum out or use sgd\n",
    )
    result = invoke("train", spec, tmp_path / "xor.npz", "-o", out, "--val-split", "0")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{spec}:6:50: NS125 training.patience: patience counts epochs without a better validation accuracy; "
        "it needs val_split above 0 (with --val-split 0.0 given on the command line)\n",
    )
    result = invoke("train", spec, tmp_path / "xor.npz", "-o", out, "--val-split", "0", "--patience", "0", "--quiet")
    assert result.exit_code == 0 and out.exists()  # --patience 0: never stop early, whatever the spec says
    # The spec's patience stops a run that does not improve; --patience 0 lets it go the whole way.
    slow = ["-o", out, "--quiet", "--epochs", "30", "--patience", "1", "--learning-rate", "0.0001"]
    assert "(stopped early)" in invoke("train", spec, tmp_path / "xor.npz", *slow).stdout
    result = invoke("train", spec, tmp_path / "xor.npz", *slow, "--patience", "0")
    assert "(stopped early)" not in result.stdout and "epoch 30/30" in result.stderr


def test_a_trained_spec_written_elsewhere_still_points_editors_at_the_schema(flowers, tmp_path):
    out = tmp_path / "results" / "rose.yaml"
    result = invoke("train", ROOT / "examples" / "rose-vs-lotus.yaml", flowers, "-o", out, "--epochs", "1", "--quiet")
    assert result.exit_code == 0
    first = out.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    assert (out.parent / first.split("=", 1)[1]).resolve() == ROOT / "schema" / "netspec-v1.schema.json"


def test_a_class_of_files_not_named_as_images_says_which_names_are_read(tmp_path):
    data = tmp_path / "data"
    (data / "red rose").mkdir(parents=True)
    (data / "white lotus").mkdir()
    (data / "red rose" / "rose.png").write_bytes((ROOT / "examples" / "images" / "red-rose.png").read_bytes())
    (data / "white lotus" / "lotus.heic").write_bytes(b"a format netspec does not read")
    (data / "white lotus" / "moved.png").symlink_to(data / "gone.png")  # a broken link is reported, not skipped
    result = invoke("eval", ROOT / "specs" / "rose-vs-lotus.yaml", data)
    assert result.exit_code == 1
    assert result.stderr == (
        f"warning: {data / 'white lotus' / 'moved.png'}: NS301 image not found (skipped)\n"
        f"{data / 'white lotus'}: NS403 class 'white lotus' has no readable images "
        "(files named .png, .jpg, .jpeg, .bmp, .gif, .tif, .tiff, .webp are read)\n"
    )


def test_npz_data(tmp_path):
    spec = tmp_path / "xor.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [same, different]\ninput: {features: 2}\nseed: 3\n"
        "layers:\n  - {name: h, type: dense, neurons: 8, activation: tanh}\n  - {name: o, type: dense, neurons: 2, activation: softmax}\n"
        "training: {learning_rate: 0.05, epochs: 300, batch_size: 8, val_split: 0}\n"
    )
    x = np.repeat(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32), 8, axis=0)
    np.savez(tmp_path / "xor.npz", x=x, y=np.repeat(np.array(["same", "different", "different", "same"]), 8))
    result = invoke("train", spec, tmp_path / "xor.npz", "-o", tmp_path / "out" / "xor.yaml", "--quiet")
    assert result.stdout.startswith("final training accuracy 100.00% at epoch 300;")
    assert invoke("eval", tmp_path / "out" / "xor.yaml", tmp_path / "xor.npz").stdout.startswith(
        "accuracy 100.00% (32 of 32)"
    )
    np.savez(tmp_path / "bad.npz", x=x[:, :1], y=np.zeros(32, dtype=int))
    result = invoke("eval", tmp_path / "out" / "xor.yaml", tmp_path / "bad.npz")
    assert (
        result.stderr
        == f"{tmp_path / 'bad.npz'}: NS404 x has shape (32, 1) (float32) and y (32,); x must be numbers shaped (n, 2), y (n,)\n"
    )


def test_a_real_ctrl_c_saves_the_best_epoch_so_far(tmp_path):
    """SIGINT to a running `netspec train` process: exit 130, and a complete, valid result."""
    import shutil
    import signal
    import subprocess

    spec = tmp_path / "xor.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [same, different]\ninput: {features: 2}\n"
        "layers:\n  - {type: dense, neurons: 8, activation: tanh}\n  - {type: dense, neurons: 2, activation: softmax}\n"
    )
    x = np.repeat(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32), 8, axis=0)
    np.savez(tmp_path / "xor.npz", x=x, y=np.tile([0, 1, 1, 0], 8))
    command = shutil.which("netspec") or str(Path(sys.executable).parent / "netspec")
    out = tmp_path / "out" / "xor.yaml"
    process = subprocess.Popen(
        [command, "train", str(spec), str(tmp_path / "xor.npz"), "-o", str(out), "--epochs", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr.readline().startswith("epoch ")  # training is under way
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "netspec: interrupted" in stderr and "Traceback" not in stderr
    assert stdout.startswith("best validation accuracy") and f"wrote {out} and {out.with_suffix('.npz')}" in stdout
    assert netspec.check(out) == []


def test_npz_data_problems(tmp_path):
    spec = tmp_path / "xor.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [same, different]\ninput: {features: 2}\nlayers:\n  - {type: dense, neurons: 2, activation: softmax}\n"
    )
    x = np.zeros((4, 2), dtype=np.float32)
    cases = {
        "nan.npz": (
            dict(x=np.array([[0, np.nan], [1, 1], [0, 0], [1, 0]]), y=np.array([0, 1, 0, 1])),
            "NS404 x holds 1 NaN or infinite value(s); every input must be finite",
        ),
        "one-class.npz": (
            dict(x=x, y=np.zeros(4, dtype=int)),
            "NS403 no examples of class(es) 'different'; every class needs some",
        ),
        "flat.npz": (
            dict(x=np.zeros((4, 3)), y=np.zeros(4, dtype=int)),
            "NS404 x has shape (4, 3) (float64) and y (4,); x must be numbers shaped (n, 2), y (n,)",
        ),
        "scalars.npz": (
            dict(x=np.float64(1), y=np.int64(0)),
            "NS404 x has shape () (float64) and y (); x must be numbers shaped (n, 2), y (n,)",
        ),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        result = invoke("eval", spec, tmp_path / name)
        assert (result.exit_code, result.stderr) == (1, f"{tmp_path / name}: {message}\n")
    (tmp_path / "text.npz").write_text("not numpy")
    result = invoke("eval", spec, tmp_path / "text.npz")
    assert (
        result.stderr
        == f"{tmp_path / 'text.npz'}: NS404 not a .npz file; write one with numpy.savez(path, x=inputs, y=labels)\n"
    )
    (tmp_path / "rows.csv").write_text("a,b\n0,1\n")  # what `netspec run` reads: numbers, no labels
    result = invoke("eval", spec, tmp_path / "rows.csv")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{tmp_path / 'rows.csv'}: NS406 data must be a folder of class folders or a .npz file with x and y "
        "(a .csv holds no labels; save x and y with numpy.savez)\n",
    )


def test_npz_members_named_without_npy_and_a_damaged_header(tmp_path):
    spec = tmp_path / "xor.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [same, different]\ninput: {features: 2}\nlayers:\n  - {type: dense, neurons: 2, activation: softmax}\n"
    )

    def npy(array) -> bytes:
        stream = io.BytesIO()
        np.save(stream, array)
        return stream.getvalue()

    # np.load reads members named x and y (not x.npy) as arrays too, and so does netspec.
    with zipfile.ZipFile(tmp_path / "bare.npz", "w") as archive:
        archive.writestr("x", npy(np.zeros((4, 2))))
        archive.writestr("y", npy(np.array([0, 1, 0, 1])))
    result = invoke("eval", spec, tmp_path / "bare.npz")
    assert result.exit_code == 0 and result.stdout.startswith("accuracy 50.00% (2 of 4)")
    # A header cut off inside its dictionary: NumPy's parser fails with a tokenizer error.
    with zipfile.ZipFile(tmp_path / "cut.npz", "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f8', 'shape': (4,    \n")
        archive.writestr("y.npy", npy(np.array([0, 1, 0, 1])))
    result = invoke("eval", spec, tmp_path / "cut.npz")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"{tmp_path / 'cut.npz'}: NS404 cannot read the .npz file")
    assert result.stderr.count("\n") == 1


def test_folder_hints(flowers, tmp_path):
    spec = ROOT / "specs" / "rose-vs-lotus.yaml"
    result = invoke("eval", spec, flowers / "red rose")
    assert (
        result.stderr
        == f"{flowers / 'red rose'}: NS401 this is the folder of class 'red rose'; give the folder that holds the class folders ({flowers})\n"
    )
    data = tmp_path / "data"
    for name in ("red rose", "White Lotus"):
        (data / name / "more").mkdir(parents=True)
    result = invoke("eval", spec, data)
    assert (
        result.stderr.splitlines()[-1]
        == f"{data / 'White Lotus'}: NS402 folder 'White Lotus' is not one of the classes (red rose, white lotus); did you mean 'white lotus'?"
    )
    # Pictures in subfolders of a class folder count, as in torchvision's ImageFolder.
    (data / "White Lotus").rename(data / "white lotus")
    for label in ("red rose", "white lotus"):
        source = sorted((flowers / label).iterdir())[0]
        (data / label / "more" / source.name).write_bytes(source.read_bytes())
    assert invoke("eval", spec, data).stdout.startswith("accuracy 100.00% (2 of 2)")


def test_unwritable_output_is_found_before_training(spec, flowers, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("a file, not a folder")
    result = invoke("train", spec, flowers, "-o", tmp_path / "afile" / "out.yaml")
    assert (
        result.exit_code == 2
        and f"-o {tmp_path / 'afile' / 'out.yaml'}: {tmp_path / 'afile'} is a file, not a folder" in result.stderr
    )
    assert "epoch" not in result.stderr
    pytest.importorskip("matplotlib")
    plot = tmp_path / "afile" / "curves.png"
    result = invoke("train", spec, flowers, "-o", tmp_path / "out.yaml", "--plot", plot)
    assert result.exit_code == 2 and f"--plot {plot}: {tmp_path / 'afile'} is a file, not a folder" in result.stderr
    assert "epoch" not in result.stderr and not (tmp_path / "out.yaml").exists()
    result = invoke("eval", spec, flowers, "--plot", plot)
    assert result.exit_code == 2 and f"--plot {plot}: {tmp_path / 'afile'} is a file, not a folder" in result.stderr
    assert "accuracy" not in result.stdout

    def refused(*args, **kwargs):  # a folder the user may not write in (root may write anywhere, so simulated)
        raise PermissionError(13, "Permission denied")

    too_long = tmp_path / ("a" * 300) / "out.yaml"  # a name the file system refuses even to look up
    result = invoke("train", spec, flowers, "-o", too_long)
    assert result.exit_code == 2
    assert f"-o {too_long}: cannot create a file in {too_long.parent} (File name too long)" in result.stderr
    monkeypatch.setattr("netspec.cli.options.tempfile.TemporaryFile", refused)
    result = invoke("train", spec, flowers, "-o", tmp_path / "out.yaml")
    assert result.exit_code == 2
    assert f"-o {tmp_path / 'out.yaml'}: cannot create a file in {tmp_path} (Permission denied)" in result.stderr


def test_outputs_never_land_on_or_among_the_inputs(spec, flowers, tmp_path):
    pytest.importorskip("matplotlib")
    image = sorted((flowers / "red rose").iterdir())[0]
    before = image.read_bytes()
    result = invoke("train", spec, flowers, "-o", tmp_path / "out.yaml", "--plot", image)
    assert result.exit_code == 2
    assert f"--plot {image} would be written among the images of {flowers}, which this run reads" in result.stderr
    inside = flowers / "red rose" / "curves.png"  # it would be read as a training image next time
    result = invoke("eval", spec, flowers, "--plot", inside)
    assert result.exit_code == 2
    assert f"--plot {inside} would be written among the images of {flowers}, which this run reads" in result.stderr
    linked = tmp_path / "linked"  # a class folder that is a link to pictures elsewhere is read all the same
    linked.mkdir()
    (linked / "red rose").symlink_to(flowers / "red rose")
    (linked / "white lotus").symlink_to(flowers / "white lotus")
    result = invoke("eval", spec, linked, "--plot", linked / "red rose" / "chart.png")
    assert result.exit_code == 2 and "would be written among the images of" in result.stderr
    assert invoke("eval", spec, linked, "--plot", linked / "red rose" / ".chart.png").exit_code == 0  # hidden: unread
    (flowers / "red rose" / ".chart.png").unlink()
    beside = flowers / "confusion.png"  # beside the class folders: training data never reads it
    result = invoke("eval", spec, flowers, "--plot", beside)
    assert result.exit_code == 0 and beside.exists()
    beside.unlink()
    assert image.read_bytes() == before and not inside.exists() and not (tmp_path / "out.yaml").exists()


def test_output_checks_create_nothing_and_catch_a_folder_in_the_way(spec, flowers, tmp_path):
    (tmp_path / "out.npz").mkdir()
    result = invoke("train", spec, flowers, "-o", tmp_path / "out.yaml")
    assert result.exit_code == 2 and f"-o {tmp_path / 'out.npz'} is a folder; name a file" in result.stderr
    assert "epoch" not in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(SOURCE.replace("neurons: 4", "neurons: 0"))
    result = invoke("train", broken, flowers, "-o", tmp_path / "made" / "a" / "out.yaml")
    assert result.exit_code == 1 and "NS104" in result.stderr
    assert not (tmp_path / "made").exists()  # the folders are made when the file is written, not before


def test_divergence_writes_nothing_and_says_why(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [same, different]\ninput: {features: 2}\nlayers:\n  - {type: dense, neurons: 2, weights: {init: normal, std: 1}}\n"
    )
    x = np.repeat(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32), 8, axis=0) * 1e30
    np.savez(tmp_path / "d.npz", x=x, y=np.tile([0, 1, 1, 0], 8))
    result = invoke(
        "train",
        spec,
        tmp_path / "d.npz",
        "-o",
        tmp_path / "o" / "s.yaml",
        "--learning-rate",
        "1e30",
        "--optimizer",
        "sgd",
        "--val-split",
        "0",
    )
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-2:] == [
        "warning: training diverged in epoch 1: the numbers overflowed; lower the learning rate (it was 1e+30)",
        "netspec: no epoch gave weights worth keeping; nothing written",
    ]
    assert not (tmp_path / "o" / "s.yaml").exists() and "RuntimeWarning" not in result.stderr


IRIS = """\
# Iris flowers from four measurements.
netspec: 1
classes: [setosa, versicolor, virginica]
input:
  features: 4   # sepal length, sepal width, petal length, petal width
seed: 1
layers:
  - {name: hidden, type: dense, neurons: 8, activation: relu, weights: he_uniform}
  - {name: output, type: dense, neurons: 3, activation: softmax}
training: {learning_rate: 0.05, epochs: 30, batch_size: 16, val_split: 0.2}
"""


def test_train_normalize_writes_each_features_mean_and_std_and_trains_on_them(tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris()
    x = np.column_stack([iris.data, np.full(150, 7.0)])  # a fifth feature, constant: its std is taken as 1
    np.savez(tmp_path / "iris.npz", x=x, y=iris.target)
    spec = tmp_path / "iris.yaml"
    spec.write_text(IRIS.replace("features: 4", "features: 5"))
    out = tmp_path / "out" / "iris.yaml"
    result = invoke("train", spec, tmp_path / "iris.npz", "-o", out, "--normalize", "--quiet")
    assert result.exit_code == 0, result.stderr
    # The comments stay; the features line alone changes (and weights_file is added).
    changed = [line for line in out.read_text().splitlines() if line not in spec.read_text().splitlines()]
    assert changed[0].startswith("  features: {size: 5, mean: [") and changed[0].endswith(
        "# sepal length, sepal width, petal length, petal width"
    )
    assert netspec.check(out) == []
    network = netspec.load(out)
    features = network.spec.input.features
    expected_std = x.std(axis=0)  # NumPy, independently: the population std
    expected_std[4] = 1.0
    np.testing.assert_allclose(features.mean, x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(features.std, expected_std, rtol=1e-6)
    # The network runs on raw measurements and classifies them well: it was trained on the same standardisation.
    np.testing.assert_allclose(
        network.inputs(x), (x - np.array(features.mean)) / np.array(features.std), rtol=1e-6, atol=1e-6
    )
    assert network.evaluate(x, iris.target).accuracy > 0.9
    result = invoke("eval", out, tmp_path / "iris.npz")
    assert result.stdout.startswith("accuracy 9")


def test_train_normalize_refuses_an_image_input(spec, flowers, tmp_path):
    result = invoke("train", spec, flowers, "-o", tmp_path / "out.yaml", "--normalize")
    assert result.exit_code == 2
    assert "--normalize is for a features input; an image input states its mean and std itself" in result.stderr


@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize(
    ("flag", "env", "inside"),
    [
        ([], {}, {1}),  # batches of 32 and 64 × 256 products: too small to gain from a second thread
        (["--threads", "3"], {}, {3}),
        ([], {"NETSPEC_NUM_THREADS": "3"}, {3}),
        (["--threads", "1"], {"NETSPEC_NUM_THREADS": "3"}, {1}),
    ],
)
def test_train_and_eval_hold_the_blas_threads_asked_for(tmp_path, monkeypatch, command, flag, env, inside):
    import threadpoolctl

    from netspec.layers import dense

    def blas_threads():
        return {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"}

    spec = tmp_path / "s.yaml"
    spec.write_text(
        "netspec: 1\nclasses: [a, b]\ninput: {features: 64}\nlayers:\n"
        "  - {type: dense, neurons: 256, activation: relu}\n  - {type: dense, neurons: 2, activation: softmax}\n"
    )
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((64, 64), dtype=np.float32), y=rng.integers(0, 2, 64))
    seen = []
    real_forward, real_runner = dense.forward, dense.runner

    def forward(layer, params, x, train=False, rng=None):
        seen.append(blas_threads())
        return real_forward(layer, params, x, train, rng)

    def runner(layer, params):
        run = real_runner(layer, params)
        return lambda x: seen.append(blas_threads()) or run(x)

    monkeypatch.setattr(dense, "forward", forward)
    monkeypatch.setattr(dense, "runner", runner)
    out = ["-o", tmp_path / "o.yaml", "--epochs", "1"] if command == "train" else []
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        args = [command, spec, tmp_path / "d.npz", *out, *flag]
        result = CliRunner().invoke(main, [str(a) for a in args], env={"NETSPEC_NUM_THREADS": None, **env})
        assert result.exit_code == 0, result.output + result.stderr
        assert seen and all(found == inside for found in seen)
        assert blas_threads() == {2}


@pytest.mark.parametrize("command", ["train", "eval"])
def test_train_and_eval_refuse_a_bad_thread_count(tmp_path, command):
    args = [command, str(ROOT / "specs" / "digits.yaml"), str(tmp_path)]
    args += ["-o", str(tmp_path / "o.yaml")] if command == "train" else []
    result = CliRunner().invoke(main, [*args, "--threads", "0"])
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: Invalid value for '--threads': 0 is not in the range x>=1.\n")
    result = CliRunner().invoke(main, args, env={"NETSPEC_NUM_THREADS": "many"})
    assert result.exit_code == 2  # the variable is named: the user gave no --threads
    assert result.stderr.endswith(
        "Error: NETSPEC_NUM_THREADS='many': expected a whole number of threads, at least 1; unset it or fix it\n"
    )


def test_an_input_written_with_a_null_key_trains_and_is_written_whole(spec, flowers, tmp_path):
    # `mean: null` is the same spec as no mean; training once read it as an input that --normalize changed.
    spec.write_text(spec.read_text().replace("scale: [0.0, 1.0]", "scale: [0.0, 1.0], mean: null"))
    out = tmp_path / "trained" / "rose.yaml"
    result = invoke("train", spec, flowers, "-o", out, "--epochs", "1", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "mean: null" in out.read_text() and netspec.check(out) == []


def test_normalize_refuses_features_too_large_to_measure_and_writes_nothing(tmp_path):
    spec = tmp_path / "iris.yaml"
    spec.write_text(IRIS)
    x = np.ones((20, 4)) * [1e308, 1, 2, 3]
    np.savez(tmp_path / "huge.npz", x=x, y=np.arange(20) % 3)
    result = invoke("train", spec, tmp_path / "huge.npz", "-o", tmp_path / "out" / "iris.yaml", "--normalize")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{tmp_path / 'huge.npz'}: NS404 feature 0 is too large to measure a finite mean and standard deviation; "
        "scale it down\n",
    )
    assert not (tmp_path / "out").exists()


def test_normalize_keeps_a_mean_exact_enough_for_its_std(tmp_path):
    from netspec.train.data import feature_stats

    # A large offset with a small spread: 7 significant digits of the mean (123456.8) would leave the
    # standardised feature at a mean of -18 instead of 0.
    x = 123456.78 + 0.001 * np.array([[-1.0], [1.0], [-1.0], [1.0]])
    mean, std = feature_stats(x)
    assert std == [0.001] and abs(((x - mean[0]) / std[0]).mean()) < 1e-6
    assert feature_stats(np.array([[5.1], [6.6]])) == ([5.85], [0.75])  # short where that is exact
