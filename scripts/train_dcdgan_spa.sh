#!/usr/bin/env bash
# DCD-GAN on SPA-Data (real rain; made by datasets/prepare.py spa) with the paper's settings (scripts/train_dcdgan.sh).
#   bash scripts/train_dcdgan_spa.sh [extra train.py flags, e.g. --gpu_ids 0 --amp --dcd_variant paper]
# DATAROOT (default datasets/spa, made by datasets/prepare.py) and NAME override the defaults.
set -euo pipefail
export DATAROOT=${DATAROOT:-datasets/spa} NAME=${NAME:-dcdgan_spa}
exec bash "$(dirname "$0")/train_dcdgan.sh" "$@"
