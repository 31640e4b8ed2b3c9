#!/usr/bin/env bash
# Restore a folder of rainy photos with a trained DCD-GAN (full resolution, any size).
#   bash scripts/test_dcdgan.sh FOLDER [NAME] [extra test.py flags, e.g. --epoch 300 --tile 1024]
# FOLDER is a plain folder of images or a dataset root with testA/ (and testB/ for PSNR/SSIM),
# relative to the current directory; results go to the repository's results/NAME/.
set -euo pipefail
FOLDER=${1:?usage: scripts/test_dcdgan.sh FOLDER [NAME] [test.py flags]}
shift
case "$FOLDER" in /*) ;; *) FOLDER=$PWD/$FOLDER ;; esac
NAME=dcdgan_rain100l
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then  # a NAME, not the first test.py flag
    NAME=$1
    shift
fi
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PY" test.py --dataroot "$FOLDER" --name "$NAME" "$@"
