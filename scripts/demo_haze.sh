#!/usr/bin/env bash
# The demo behind `make demo-haze`: build the embedded synthetic haze (datasets/haze: 1,080 + 1,080
# crops, 24 test pairs from photographs no training crop comes from), restore its hazy test images
# with the training-free dark channel prior (test.py --model dcp), train the quick dehazing
# configuration (scripts/train_quick_haze.sh, ITERS iterations) and restore them with it, print
# RGB PSNR / SSIM, CIEDE2000 and residual haze of the input, the prior and the learned model
# against the clear ground truth, restore the clear testB photographs too (the harm to haze-free
# images: their PSNR against themselves), and write an input | dark channel prior | learned model
# | ground truth grid. docs/EXPERIMENTS.md "Dehazing, 2026-12-06" gives the measurements behind it.
# DEMO_NAME, DEMO_DATA, ITERS, CHECKPOINTS_DIR, RESULTS_DIR and extra train.py flags (as arguments)
# override it. A second demo of the same DEMO_NAME is refused, so no finished run is replaced
# unasked: OVERWRITE=1 starts it over.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PY
export ITERS=${ITERS:-3000}
NAME=${DEMO_NAME:-haze_demo}
DATA=${DEMO_DATA:-datasets/haze}
CHECKPOINTS=${CHECKPOINTS_DIR:-checkpoints}
RESULTS=${RESULTS_DIR:-results}
start=$(date +%s)

MAKE_TARGET=demo-haze SCRIPT=demo_haze.sh source scripts/demo_guard.sh

if [ ! -f "$DATA/meta.json" ]; then
    # The photo catalogue is fetched once into datasets/photos (scikit-image + Debian packages).
    "$PY" -m datasets.make_synthetic --kind haze --out "$DATA"
fi
built=$(date +%s)

# The training-free baseline every dehazing paper reports (He, Sun, Tang 2009), the paper's constants.
"$PY" test.py --dataroot "$DATA" --model dcp --metric_channel rgb --nr_metrics false --results_dir "$RESULTS/$NAME"

bash scripts/train_quick_haze.sh "$DATA" "$NAME" --gpu_ids -1 --checkpoints_dir "$CHECKPOINTS" "$@"
trained=$(date +%s)

"$PY" test.py --dataroot "$DATA" --name "$NAME" --gpu_ids -1 --metric_channel rgb --nr_metrics false \
    --checkpoints_dir "$CHECKPOINTS" --results_dir "$RESULTS"
# A dehazer should leave a clear photograph alone: restore the clear testB photographs too.
"$PY" test.py --dataroot "$DATA/testB" --name "$NAME" --gpu_ids -1 --nr_metrics false \
    --checkpoints_dir "$CHECKPOINTS" --results_dir "$RESULTS/$NAME/clean"
"$PY" -m scripts.comparison_grid --dataroot "$DATA" --input_label "hazy input" --results "$RESULTS/$NAME/dcp/test_method/images" \
    --label "dark channel prior" --results "$RESULTS/$NAME/test_latest/images" \
    --label "quick haze ($ITERS its)" --out "$RESULTS/$NAME/grid.png"
end=$(date +%s)
echo "demo-haze: data $((built - start)) s, prior + training $((trained - built)) s, total $((end - start)) s"
echo "demo-haze: results in $RESULTS/$NAME/test_latest/index.html, grid in $RESULTS/$NAME/grid.png"
echo "demo-haze: the dark channel prior ($RESULTS/$NAME/dcp/test_method/metrics.txt):"
cat "$RESULTS/$NAME/dcp/test_method/metrics.txt"
echo "demo-haze: the learned model ($RESULTS/$NAME/test_latest/metrics.txt):"
cat "$RESULTS/$NAME/test_latest/metrics.txt"
echo "demo-haze: harm to clear images, the clear testB photographs restored and scored against themselves" \
    "(higher PSNR is better):"
"$PY" evaluate.py --pred "$RESULTS/$NAME/clean/$NAME/test_latest/images" --gt "$DATA/testB" --channel rgb \
    | tail -n 1
