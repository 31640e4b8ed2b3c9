#!/usr/bin/env bash
# CDD-GAN (Chen et al., ECCV 2022; docs/METHODS.md) on RESIDE SOTS with paper-like settings:
# trainA hazy, trainB clear (disjoint scenes), lsgan, GAN 1, cycle 10, NCE 1, lambda_MS_neg 1,
# a queue of 4096 generated negatives, clear exemplars as positives, lr 2e-4, 200 + 200 epochs,
# load 286, crop 256, batch 1. CDD-GAN has no public code: these are this repository's
# starting defaults, each an interpretation documented in models/cddgan_model.py.
#   python -m datasets.prepare reside_sots --subset outdoor --archive SOTS.zip --out datasets/sots_outdoor
#   bash scripts/train_cddgan_sots.sh [extra train.py flags, e.g. --gpu_ids 0 --amp]
#   python test.py --dataroot datasets/sots_outdoor --name cddgan_sots --metric_channel rgb
# Dehazing is scored on RGB (docs/METHODS.md); test.py writes metrics.txt beside the restored images.
# DATAROOT (default datasets/sots_outdoor) and NAME override the defaults; flags given on the
# command line come last and win.
# These settings are the defaults of --model cddgan, so only the model is named here.
set -euo pipefail
source "$(dirname "$0")/launch_train.sh"
DATAROOT=${DATAROOT:-datasets/sots_outdoor}
NAME=${NAME:-cddgan_sots}
train_py --dataroot "$DATAROOT" --name "$NAME" --model cddgan "$@"
