#!/usr/bin/env bash
# CycleGAN (Zhu et al., ICCV 2017) on Rain100L with the paper's settings, including its
# plain strided / transposed convolutions (no anti-aliasing).
#   bash scripts/train_cycle_gan_rain100l.sh [extra train.py flags, e.g. --gpu_ids 0 --amp]
# DATAROOT (default datasets/rain100l, made by datasets/prepare.py) and NAME override the
# defaults; flags given on the command line come last and win.
# The other settings are the defaults of --model cycle_gan; only the convolutions differ.
set -euo pipefail
source "$(dirname "$0")/launch_train.sh"
DATAROOT=${DATAROOT:-datasets/rain100l}
NAME=${NAME:-cycle_gan_rain100l}
train_py --dataroot "$DATAROOT" --name "$NAME" --model cycle_gan --no_antialias --no_antialias_up "$@"
