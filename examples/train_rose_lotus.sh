#!/usr/bin/env bash
# The whole loop for the seed example: draw pictures, check the spec, train, evaluate, classify.
# Run from the repository root; writes data/flowers/ and specs/rose-vs-lotus.{yaml,npz}.
set -euo pipefail
python examples/make_flowers.py data/flowers/train --count 400 --seed 0
python examples/make_flowers.py data/flowers/test --count 200 --seed 1
netspec validate examples/rose-vs-lotus.yaml
netspec train examples/rose-vs-lotus.yaml data/flowers/train -o specs/rose-vs-lotus.yaml --quiet
netspec eval specs/rose-vs-lotus.yaml data/flowers/test
netspec run specs/rose-vs-lotus.yaml examples/images/red-rose.png examples/images/white-lotus.png
