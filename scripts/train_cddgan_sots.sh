#!/usr/bin/env bash
# CDD-GAN (Chen et al., ECCV 2022; SPEC.md 3.4) on RESIDE SOTS with paper-like settings:
# trainA hazy, trainB clear (disjoint scenes), lsgan, GAN 1, cycle 10, NCE 1, lambda_MS_neg 1,
# a queue of 4096 generated negatives, clear exemplars as positives, lr 2e-4, 200 + 200 epochs,
# load 286, crop 256, batch 1. CDD-GAN has no public code: these are this repository's
# starting defaults, each an interpretation documented in models/cddgan_model.py.
#   python datasets/prepare.py reside_sots --subset outdoor --archive SOTS.zip --out datasets/sots_outdoor
#   bash scripts/train_cddgan_sots.sh [extra train.py flags, e.g. --gpu_ids 0 --amp]
#   python test.py --dataroot datasets/sots_outdoor --name cddgan_sots --metric_channel rgb
# Dehazing is scored on RGB (SPEC.md 4); test.py writes metrics.txt beside the restored images.
# DATAROOT (default datasets/sots_outdoor) and NAME override the defaults; flags given on the
# command line come last and win.
set -euo pipefail
source "$(dirname "$0")/launch_train.sh"
DATAROOT=${DATAROOT:-datasets/sots_outdoor}
NAME=${NAME:-cddgan_sots}
train_py --dataroot "$DATAROOT" --name "$NAME" --model cddgan \
    --gan_mode lsgan --lambda_GAN 1 --lambda_cyc 10 --lambda_NCE 1 --lambda_MS_neg 1 \
    --neg_queue 4096 --cdd_clear_positives True --cdd_query_encoder own --neg_nz 64 --neg_ema_decay 0.9 \
    --nce_layers 0,4,8,12,16 --num_patches 256 --nce_T 0.07 --netF mlp_sample --netF_nc 256 \
    --netG resnet_9blocks --ngf 64 --ndf 64 --init_type xavier --init_gain 0.02 \
    --lr 0.0002 --beta1 0.5 --beta2 0.999 --n_epochs 200 --n_epochs_decay 200 \
    --load_size 286 --crop_size 256 --batch_size 1 --pool_size 50 \
    "$@"
