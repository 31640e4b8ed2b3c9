#!/usr/bin/env bash
# DCD-GAN (Chen et al., CVPR 2022) with the paper's settings: lr 1e-4,
# 300 + 300 epochs, load 512, crop 256, batch 1, hinge GAN, l_NCE 2, l_IDT 1, NCE layers
# 4,8,12,16, save every 10 epochs (docs/METHODS.md). The released objective (--dcd_variant
# official, the default by measurement); add --dcd_variant paper for the paper's cycles and
# four contrastive terms.
#   DATAROOT=datasets/X NAME=run bash scripts/train_dcdgan.sh [extra train.py flags]
# The per-dataset launchers (train_dcdgan_<dataset>.sh) set DATAROOT and NAME and call this;
# flags given on the command line come last and win (e.g. --gpu_ids 0 --amp).
# These settings are the defaults of --model dcdgan, so only the model is named here.
set -euo pipefail
source "$(dirname "$0")/launch_train.sh"
DATAROOT=${DATAROOT:?set DATAROOT to a dataset root (trainA/, trainB/)}
NAME=${NAME:-dcdgan}
train_py --dataroot "$DATAROOT" --name "$NAME" --model dcdgan "$@"
