"""Spreading work with Dask: the example classifies a folder on a local cluster as netspec run would."""

from __future__ import annotations

import csv
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import netspec

pytest.importorskip("dask.bag", reason="pip install -e '.[dask]'")
pytest.importorskip("distributed", reason="pip install -e '.[dask]'")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import dask_batch  # noqa: E402

from make_flowers import make_dataset  # noqa: E402


def test_networks_pickle_to_the_same_scores():
    network = netspec.load(ROOT / "specs" / "rose-vs-lotus.yaml")
    copy = pickle.loads(pickle.dumps(network))
    x = network.inputs([ROOT / "examples" / "images" / "red-rose.png"])
    np.testing.assert_array_equal(copy.forward(x), network.forward(x))


def test_a_local_cluster_labels_every_image_as_netspec_does(tmp_path):
    from dask.distributed import Client, LocalCluster

    make_dataset(tmp_path / "images", count_per_class=150, seed=4, size=32)
    (tmp_path / "images" / "red rose" / "broken.png").write_bytes(b"not a picture")
    network = netspec.load(ROOT / "specs" / "rose-vs-lotus.yaml")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        rows = dask_batch.classify_folder(network, tmp_path / "images", client, partitions=8)
    assert len(rows) == 301
    good = [row for row in rows if row[1] != "error"]
    expected = network.predict([row[0] for row in good])
    assert [row[1] for row in good] == expected
    broken = [row for row in rows if row[1] == "error"]
    assert len(broken) == 1 and "NS302" in broken[0][3]
    dask_batch.write_csv(rows, tmp_path / "labels.csv")
    with open(tmp_path / "labels.csv", newline="", encoding="utf-8") as stream:
        table = list(csv.reader(stream))
    assert table[0] == ["file", "label", "score", "error"] and len(table) == 302
