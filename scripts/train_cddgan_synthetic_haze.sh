#!/usr/bin/env bash
# CDD-GAN on the embedded synthetic haze set (SPEC.md 6; built from scikit-image's photographs
# on first use): the settings of scripts/train_cddgan_sots.sh at the set's 128-px crop size.
#   bash scripts/train_cddgan_synthetic_haze.sh [extra train.py flags, e.g. --gpu_ids 0 --max_iters 2000]
#   python test.py --dataroot datasets/synthetic_haze --name cddgan_synthetic_haze --metric_channel rgb
# DATAROOT (default datasets/synthetic_haze) and NAME override the defaults; flags given on
# the command line come last and win. PY picks the interpreter (default .venv/bin/python).
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
train_py --dataroot "$DATAROOT" --name "$NAME" --model cddgan \
    --gan_mode lsgan --lambda_GAN 1 --lambda_cyc 10 --lambda_NCE 1 --lambda_MS_neg 1 \
    --neg_queue 4096 --cdd_clear_positives True --cdd_query_encoder own --neg_nz 64 --neg_ema_decay 0.9 \
    --nce_layers 0,4,8,12,16 --num_patches 256 --nce_T 0.07 --netF mlp_sample --netF_nc 256 \
    --netG resnet_9blocks --ngf 64 --ndf 64 --init_type xavier --init_gain 0.02 \
    --lr 0.0002 --beta1 0.5 --beta2 0.999 --n_epochs 200 --n_epochs_decay 200 \
    --load_size 143 --crop_size 128 --batch_size 1 --pool_size 50 \
    "$@"
