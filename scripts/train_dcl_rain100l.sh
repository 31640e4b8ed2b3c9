#!/usr/bin/env bash
# DCLGAN (Han et al., CVPR Workshops 2021) on Rain100L with the paper's settings
# (200 + 200 epochs, the defaults of its released training options).
#   bash scripts/train_dcl_rain100l.sh [extra train.py flags, e.g. --gpu_ids 0 --amp]
# DATAROOT (default datasets/rain100l, made by datasets/prepare.py) and NAME override the
# defaults; flags given on the command line come last and win.
set -euo pipefail
source "$(dirname "$0")/launch_train.sh"
DATAROOT=${DATAROOT:-datasets/rain100l}
NAME=${NAME:-dcl_rain100l}
train_py --dataroot "$DATAROOT" --name "$NAME" --model dcl \
    --gan_mode hinge --lambda_GAN 1 --lambda_NCE 2 --lambda_IDT 1 \
    --nce_layers 4,8,12,16 --num_patches 256 --nce_T 0.07 --netF mlp_sample --netF_nc 256 \
    --netG resnet_9blocks --ngf 64 --ndf 64 --init_type xavier --init_gain 0.02 \
    --lr 0.0002 --beta1 0.5 --beta2 0.999 --n_epochs 200 --n_epochs_decay 200 \
    --load_size 286 --crop_size 256 --batch_size 1 --pool_size 0 \
    "$@"
