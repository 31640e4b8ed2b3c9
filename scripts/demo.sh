#!/usr/bin/env bash
# The demo behind `make demo`: build the embedded synthetic rain data, train DCD-GAN on it
# on the CPU (about 10 minutes on 2 cores), restore the rainy test images and print PSNR/SSIM
# of the rainy input and of the restored output against the clean ground truth.
#
# The configuration is small on purpose (see README "Demo"): a narrow generator, 64-px
# crops and a fixed iteration budget, tuned by measurement so the output beats the input.
# DEMO_ITERS, DEMO_NAME and extra train.py flags (as arguments) override it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NAME=${DEMO_NAME:-dcdgan_demo}
ITERS=${DEMO_ITERS:-1500}
DATA=datasets/demo_rain
start=$(date +%s)

if [ ! -f "$DATA/meta.json" ]; then
    "$PY" -m datasets.make_synthetic --kind rain --preset light --out "$DATA" --size 96 --test_size 128 --overwrite
fi

"$PY" train.py --dataroot "$DATA" --name "$NAME" --model dcdgan --gpu_ids -1 \
    --ngf 16 --ndf 32 --netF_nc 64 --num_patches 64 \
    --preprocess crop --crop_size 64 --load_size 96 \
    --n_epochs 1000 --n_epochs_decay 0 --max_iters "$ITERS" \
    --display_id 0 --print_freq 50 --save_latest_freq 500 --num_threads 1 \
    "$@"
trained=$(date +%s)

"$PY" test.py --dataroot "$DATA" --name "$NAME" --gpu_ids -1
end=$(date +%s)
echo "demo: training $((trained - start)) s, total $((end - start)) s"
echo "demo: results in results/$NAME/test_latest/index.html; metrics in results/$NAME/test_latest/metrics.txt"
cat "results/$NAME/test_latest/metrics.txt"
