#!/usr/bin/env bash
# The GAN alternative to scripts/train_quick_haze.sh (which trained this until 2026-12-06):
# CDD-GAN (domain A hazy, B clear) whose generators output through the scattering model
# (--haze_layer asm: G_A predicts a transmission map and one airlight and removes exactly that
# haze, G_B renders it), with the small-budget settings of train_quick.sh: a fixed number of
# iterations whatever the dataset's size, the learning rate constant for the first half and
# decaying linearly to zero over the second.
#   bash scripts/train_quick_haze_gan.sh DATAROOT NAME [extra train.py flags, e.g. --lambda_rehaze 1]
# ITERS (default 4000) sets the budget. Flags given on the command line come last and win. Like
# train.py, it refuses a NAME that already holds a trained run: --continue_train resumes it,
# OVERWRITE=1 (or --overwrite_run) starts it over. Score with the dehazing convention:
#   python test.py --dataroot DATAROOT --name NAME --metric_channel rgb
# It measured below the dark channel prior at every budget tried, and below the pseudo-pair recipe
# of train_quick_haze.sh (docs/EXPERIMENTS.md, 2026-12-06); it stays for comparison and as a
# starting point for GAN-based dehazing of real hazy photographs. It is not the paper's
# configuration (scripts/train_cddgan_synthetic_haze.sh keeps that). Besides the haze layer it
# differs where short CPU runs of the deraining recipe measured better: U-Net-like skips,
# generators without instance norm (it would divide out the haze's density, image-wide statistics
# the layer must see), a 2-layer PatchGAN, ngf 16 / ndf 32, a smaller contrastive head. Crops are
# 96 px, not 64: the transmission varies over the whole scene and the airlight is one colour for
# all of it, so a crop has to hold more of the scene than streaks need.
set -euo pipefail
source "$(dirname "$0")/quick_budget.sh"
source "$(dirname "$0")/launch_train.sh"
train_py --dataroot "$DATAROOT" --name "$NAME" "${overwrite[@]}" --model cddgan --haze_layer asm \
    --lr 0.0002 --skips --normG none --netD n_layers --n_layers_D 2 --ngf 16 --ndf 32 --netF_nc 64 \
    --num_patches 64 \
    --preprocess crop --crop_size 96 --n_iters $((ITERS / 2)) --n_iters_decay $((ITERS - ITERS / 2)) \
    --display_id 0 --print_freq 100 --save_latest_freq 1000 --num_threads 0 \
    "$@"
