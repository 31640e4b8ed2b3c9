#!/usr/bin/env bash
# The quick deraining recipe: pseudo pairs (docs/EXPERIMENTS.md "Deraining that holds on the
# suite, 2026-12-06 (night)" gives the measurements behind it). Only unpaired data is used:
# every clean trainB crop is put under procedural rain whose direction, coverage, streak
# brightness and veil are measured on the rainy trainA images (data/pseudo_rain_dataset.py),
# and the restoring generator learns with L1 on those pairs, 30% of them identity pairs so that
# rain-free images are left alone. A fixed number of iterations whatever the dataset's size, the
# learning rate constant for the first half and decaying linearly to zero over the second.
#   bash scripts/train_quick.sh DATAROOT NAME [extra train.py flags, e.g. --gpu_ids 0]
# ITERS (default 4000: 3-5 minutes on 2 CPU cores) sets the budget. Flags given on the command
# line come last and win. Like train.py, it refuses a NAME that already holds a trained run:
# --continue_train resumes it, OVERWRITE=1 (or --overwrite_run) starts it over.
# The generator: ResNet with a global residual and U-Net-like skips, no normalisation, ngf 16,
# 64-px crops, initialised for a network without normalisation (--init_type residual: under
# the default init it stayed the identity on small sets). The matched streak opacity has a
# floor (--pseudo_rain_min_opacity 0.7) so that wide, faint rain is not matched by streaks too
# dim to learn from. The learning rate is 1e-4: at 2e-4 one seed in three stepped the last tanh
# into saturation within 300 iterations and never came back (every output its input darkened);
# at 1e-4 it still happened once (small set, seed 2, on an AVX-512 EPYC), so the output has no
# tanh (--rain_layer linear: a clamp that passes the gradient, docs/EXPERIMENTS.md 2026-12-07).
# --lambda_under 0.25 weighs an output darker than its target 1.25 times as much as one brighter:
# where the generator cannot tell how much rain there is it leaves some rather than digging a dark
# ghost (over 3 seeds at 15 minutes: dark pixels on heavy rain 0.53% -> 0.29%, clean photographs
# +1 to +2.4 dB, at 0.6 dB less on the 51-image set; docs/EXPERIMENTS.md, 2026-12-07, forenoon).
# --pseudo_identity_share_end auto: over budgets above 4,000 iterations, where trainA's rain has a
# veil, the identity share grows from 0.3 at the first epoch to 0.6 at the last (at 28,000
# iterations and more; less in between): at about 15 minutes that gave clean photographs 2.3-5.7
# dB for 0.04-0.42 dB of rain removal, while at 4,000 iterations it cost 0.7-1.2 dB, and on rain
# without a veil 0.69 dB for nothing (docs/EXPERIMENTS.md, 2026-12-07, evening and night).
# DCD-GAN's quick configuration, the default before 2026-12-06, is scripts/train_quick_gan.sh.
set -euo pipefail
source "$(dirname "$0")/quick_budget.sh"
source "$(dirname "$0")/launch_train.sh"
train_py --dataroot "$DATAROOT" --name "$NAME" "${overwrite[@]}" --model paired --dataset_mode pseudo_rain \
    --lr 0.0001 --global_residual --rain_layer linear --skips --normG none --ngf 16 --init_type residual \
    --pseudo_identity_share 0.3 --pseudo_identity_share_end auto --pseudo_rain_min_opacity 0.7 --lambda_under 0.25 \
    --preprocess crop --crop_size 64 --n_iters $((ITERS / 2)) --n_iters_decay $((ITERS - ITERS / 2)) \
    --display_id 0 --print_freq 100 --save_latest_freq 1000 --num_threads 0 \
    "$@"
