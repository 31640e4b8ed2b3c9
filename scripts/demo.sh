#!/usr/bin/env bash
# The demo behind `make demo`: build the embedded synthetic rain data, train DCD-GAN on it
# on the CPU (about 10 minutes on 2 cores), restore the rainy test images and print PSNR/SSIM
# of the rainy input and of the restored output against the clean ground truth.
#
# The configuration is small on purpose (see README "Demo" for the measurements behind it):
# heavy synthetic rain, a narrow generator with a global residual (--global_residual, off in
# the paper: without it the generator cannot even reproduce colours within this budget),
# 64-px crops, 4 epochs of 200 iterations (the last 2 with linear learning-rate decay).
# DEMO_NAME and extra train.py flags (as arguments, e.g. --dcd_variant official) override it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# One OpenMP thread: networks this small gain little from a second one, and two spinning
# threads slow down by an order of magnitude when anything else shares the two cores.
# The DataLoader worker (--num_threads 1) gets the other core.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
NAME=${DEMO_NAME:-dcdgan_demo}
DATA=datasets/demo_rain_heavy
start=$(date +%s)

if [ ! -f "$DATA/meta.json" ]; then
    "$PY" -m datasets.make_synthetic --kind rain --preset heavy --out "$DATA" --size 96 --test_size 128 --overwrite
fi

"$PY" train.py --dataroot "$DATA" --name "$NAME" --overwrite_run --model dcdgan --dcd_variant paper --gpu_ids -1 \
    --global_residual --lr 0.0002 --ngf 16 --ndf 32 --netF_nc 64 --num_patches 64 \
    --preprocess crop --crop_size 64 --n_epochs 2 --n_epochs_decay 2 \
    --display_id 0 --print_freq 50 --save_latest_freq 500 --num_threads 1 \
    "$@"
trained=$(date +%s)

"$PY" test.py --dataroot "$DATA" --name "$NAME" --gpu_ids -1
end=$(date +%s)
echo "demo: training $((trained - start)) s, total $((end - start)) s"
echo "demo: results in results/$NAME/test_latest/index.html; metrics in results/$NAME/test_latest/metrics.txt"
cat "results/$NAME/test_latest/metrics.txt"
