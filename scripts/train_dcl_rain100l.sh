#!/usr/bin/env bash
# DCLGAN (Han et al., CVPR Workshops 2021) on Rain100L with the paper's settings
# (200 + 200 epochs, the defaults of its released training options).
#   bash scripts/train_dcl_rain100l.sh [extra train.py flags, e.g. --gpu_ids 0 --amp]
# DATAROOT (default datasets/rain100l, made by datasets/prepare.py) and NAME override the
# defaults; flags given on the command line come last and win.
# The paper's settings are the defaults of --model dcl, so only the model is named here.
set -euo pipefail
source "$(dirname "$0")/launch_train.sh"
DATAROOT=${DATAROOT:-datasets/rain100l}
NAME=${NAME:-dcl_rain100l}
train_py --dataroot "$DATAROOT" --name "$NAME" --model dcl "$@"
