#!/usr/bin/env bash
# CycleGAN (Zhu et al., ICCV 2017) on Rain100L with the paper's settings, including its
# plain strided / transposed convolutions (no anti-aliasing).
#   bash scripts/train_cycle_gan_rain100l.sh [extra train.py flags, e.g. --gpu_ids 0 --amp]
# DATAROOT (default datasets/rain100l, made by datasets/prepare.py) and NAME override the
# defaults; flags given on the command line come last and win.
set -euo pipefail
source "$(dirname "$0")/launch_train.sh"
DATAROOT=${DATAROOT:-datasets/rain100l}
NAME=${NAME:-cycle_gan_rain100l}
train_py --dataroot "$DATAROOT" --name "$NAME" --model cycle_gan \
    --gan_mode lsgan --lambda_A 10 --lambda_B 10 --lambda_identity 0.5 --pool_size 50 \
    --netG resnet_9blocks --ngf 64 --ndf 64 --no_antialias --no_antialias_up \
    --init_type normal --init_gain 0.02 \
    --lr 0.0002 --beta1 0.5 --beta2 0.999 --n_epochs 100 --n_epochs_decay 100 \
    --load_size 286 --crop_size 256 --batch_size 1 \
    "$@"
