#!/usr/bin/env bash
# CDD-GAN on the embedded synthetic haze set (datasets/README.md; built on first use from the 35
# embedded photographs, which make_synthetic fetches once): the settings of scripts/train_cddgan_sots.sh at the set's 128-px crop size.
#   bash scripts/train_cddgan_synthetic_haze.sh [extra train.py flags, e.g. --gpu_ids 0 --max_iters 2000]
#   python test.py --dataroot datasets/synthetic_haze --name cddgan_synthetic_haze --metric_channel rgb
# DATAROOT (default datasets/synthetic_haze) and NAME override the defaults; flags given on
# the command line come last and win. PY picks the interpreter (default .venv/bin/python).
# Only the sizes differ from the defaults of --model cddgan.
set -euo pipefail
source "$(dirname "$0")/launch_train.sh"
DATAROOT=${DATAROOT:-datasets/synthetic_haze}
NAME=${NAME:-cddgan_synthetic_haze}
if [ -z "${PY:-}" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [ ! -f "$DATAROOT/meta.json" ]; then
    "$PY" -m datasets.make_synthetic --kind haze --out "$DATAROOT" --size 128 --test_size 128
fi
train_py --dataroot "$DATAROOT" --name "$NAME" --model cddgan --load_size 143 --crop_size 128 "$@"
