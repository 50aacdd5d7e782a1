"""Classify a large folder of images on a Dask cluster, and write a CSV of labels.

    pip install -e '.[dask]'
    python examples/dask_batch.py SPEC IMAGES_FOLDER OUT.csv [--scheduler ADDRESS] [--partitions N]

Without --scheduler it starts a cluster of local worker processes; with the address of a
distributed Dask cluster (`tcp://host:8786`) the same code spreads the images over its machines.
The network is built once and sent to every worker as its spec and arrays (a netspec Network
pickles cheaply); each partition of images is read and classified in batches on a worker.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import dask.bag as db
import numpy as np
from dask.distributed import Client, LocalCluster

import netspec
from netspec.files import atomic_write
from netspec.folders import IMAGE_SUFFIXES, files_below


def classify_partition(paths: list[str], network: netspec.Network) -> list[tuple[str, str, float, str]]:
    """(path, label, score, error) for each image of a partition; an unreadable image gets the label 'error'."""
    rows = []
    for start in range(0, len(paths), 64):
        batch = paths[start : start + 64]
        readable, arrays = [], []
        for path in batch:
            try:
                arrays.append(network.inputs([path])[0])
                readable.append(path)
            except netspec.InputError as err:
                rows.append((path, "error", float("nan"), str(err)))
        if arrays:
            scores = network.forward(np.stack(arrays))
            for path, row in zip(readable, scores):
                best = int(row.argmax())
                rows.append((path, network.classes[best], float(row[best]), ""))
    return rows


def classify_folder(network: netspec.Network, folder: Path, client: Client, partitions: int) -> list[tuple]:
    found, _ = files_below(folder, IMAGE_SUFFIXES, "NS302", any_case=True)  # the images `netspec run` would read
    paths = [str(path) for path in found]
    shared = client.scatter(network, broadcast=True)  # sent once to each worker, not once per task
    bag = db.from_sequence(paths, npartitions=max(1, min(partitions, len(paths))))
    return sorted(bag.map_partitions(classify_partition, shared).compute())


def write_csv(rows: list[tuple], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["file", "label", "score", "error"])
    writer.writerows(rows)
    with atomic_write(out) as stream:  # whole or not at all: a crash never leaves half a CSV
        stream.write(text.getvalue().encode("utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args()
    network = netspec.load(args.spec)
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True))
    with client:
        rows = classify_folder(network, args.images, client, args.partitions)
    write_csv(rows, args.out)
    print(f"wrote {args.out}: {len(rows)} images")


if __name__ == "__main__":
    main()
