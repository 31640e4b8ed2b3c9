#!/usr/bin/env bash
# The recommended short-budget configuration of DCD-GAN (README "Demo" and "Results" give the
# measurements behind it): a fixed number of iterations whatever the dataset's size, the
# learning rate constant for the first half and decaying linearly to zero over the second.
#   bash scripts/train_quick.sh DATAROOT NAME [extra train.py flags, e.g. --gpu_ids 0]
# ITERS (default 3000) sets the budget. Flags given on the command line come last and win.
# This is not the paper's configuration (scripts/train_dcdgan.sh): it is what trains a
# visible deraining on a CPU in minutes.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/train_quick.sh DATAROOT NAME [extra train.py flags]" >&2
    exit 2
fi
DATAROOT=$1
NAME=$2
shift 2
ITERS=${ITERS:-3000}
# Each call trains NAME afresh (replacing an earlier run of that name) unless it resumes it.
afresh=(--overwrite_run)
for arg in "$@"; do [ "$arg" = --continue_train ] && afresh=(); done
source "$(dirname "$0")/launch_train.sh"
train_py --dataroot "$DATAROOT" --name "$NAME" "${afresh[@]}" --model dcdgan --dcd_variant official \
    --lr 0.0002 --global_residual --ngf 16 --ndf 32 --netF_nc 64 --num_patches 64 \
    --preprocess crop --crop_size 64 --n_iters $((ITERS / 2)) --n_iters_decay $((ITERS - ITERS / 2)) \
    --display_id 0 --print_freq 100 --save_latest_freq 1000 --num_threads 0 \
    "$@"
