#!/usr/bin/env bash
# Restore a folder of rainy photos with a trained DCD-GAN (full resolution, any size).
#   bash scripts/test_dcdgan.sh FOLDER [NAME] [extra test.py flags, e.g. --epoch 300 --tile 1024]
# FOLDER is a plain folder of images or a dataset root with testA/ (and testB/ for PSNR/SSIM).
set -euo pipefail
cd "$(dirname "$0")/.."
FOLDER=${1:?usage: scripts/test_dcdgan.sh FOLDER [NAME] [test.py flags]}
NAME=${2:-dcdgan_rain100l}
shift $(( $# >= 2 ? 2 : 1 ))
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PY" test.py --dataroot "$FOLDER" --name "$NAME" "$@"
