#!/usr/bin/env bash
# DCD-GAN on Rain100L with the paper's settings (scripts/train_dcdgan.sh).
#   bash scripts/train_dcdgan_rain100l.sh [extra train.py flags, e.g. --gpu_ids 0 --amp --dcd_variant paper]
# DATAROOT (default datasets/rain100l, made by datasets/prepare.py) and NAME override the defaults.
set -euo pipefail
export DATAROOT=${DATAROOT:-datasets/rain100l} NAME=${NAME:-dcdgan_rain100l}
exec bash "$(dirname "$0")/train_dcdgan.sh" "$@"
