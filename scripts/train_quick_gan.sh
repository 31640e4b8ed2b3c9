#!/usr/bin/env bash
# DCD-GAN's short-budget configuration (docs/EXPERIMENTS.md "Where the quick configuration
# differs from the paper's" gives the measurements behind every flag), scripts/train_quick.sh
# until 2026-12-06, when the pseudo-pair recipe replaced it there (it held on the whole rain
# suite, this GAN collapsed on small sets by seed; two_stage's first stage still trains this): a fixed
# number of iterations whatever the dataset's size, the learning rate constant for the first
# half and decaying linearly to zero over the second.
#   bash scripts/train_quick_gan.sh DATAROOT NAME [extra train.py flags, e.g. --gpu_ids 0]
# ITERS (default 4000: about 8-11 minutes on 2 CPU cores, depending on the CPU; README "Demo")
# sets the budget. Flags given on the command line come last and win. Like train.py, it refuses
# a NAME that already holds a trained run: --continue_train resumes it, OVERWRITE=1 (or --overwrite_run) starts it over.
# This is not the paper's configuration (scripts/train_dcdgan.sh keeps that). It differs where
# short CPU trainings measured better: the released (DCLGAN) objective at lr 2e-4, a global
# residual and U-Net-like skips (thin streaks reach the decoder), a single-channel rain layer
# with a sparsity term (rain is grey and sparse), a 2-layer PatchGAN, generators without
# instance norm (image-wide statistics divide out how much rain there is; it left more rain
# and darkened flat regions) and a 5x identity weight (a rain-free image should pass through
# untouched), and the contrastive term off (at weight 2 it slowed deraining at these budgets;
# --lambda_NCE puts it back).
set -euo pipefail
source "$(dirname "$0")/quick_budget.sh"
source "$(dirname "$0")/launch_train.sh"
train_py --dataroot "$DATAROOT" --name "$NAME" "${overwrite[@]}" --model dcdgan --dcd_variant official \
    --lr 0.0002 --global_residual --skips --rain_layer gray --lambda_sparse 1 --lambda_NCE 0 \
    --normG none --lambda_IDT 5 --netD n_layers --n_layers_D 2 --ngf 16 --ndf 32 --netF_nc 64 \
    --num_patches 64 \
    --preprocess crop --crop_size 64 --n_iters $((ITERS / 2)) --n_iters_decay $((ITERS - ITERS / 2)) \
    --display_id 0 --print_freq 100 --save_latest_freq 1000 --num_threads 0 \
    "$@"
