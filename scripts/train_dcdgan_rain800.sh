#!/usr/bin/env bash
# DCD-GAN on Rain800 with the paper's settings (scripts/train_dcdgan.sh).
#   bash scripts/train_dcdgan_rain800.sh [extra train.py flags, e.g. --gpu_ids 0 --amp --dcd_variant paper]
# DATAROOT (default datasets/rain800, made by datasets/prepare.py) and NAME override the defaults.
set -euo pipefail
export DATAROOT=${DATAROOT:-datasets/rain800} NAME=${NAME:-dcdgan_rain800}
exec bash "$(dirname "$0")/train_dcdgan.sh" "$@"
