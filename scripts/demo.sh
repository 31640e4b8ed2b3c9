#!/usr/bin/env bash
# The demo behind `make demo`: build the embedded synthetic heavy rain (varied streaks and veil;
# the test images come from photographs that no training crop comes from), train the quick
# deraining recipe on it (scripts/train_quick.sh: pseudo pairs, ITERS iterations, 4,000 by
# default: about 3-5 minutes on 2 CPU cores, depending on the CPU), restore the rainy test
# images, print PSNR/SSIM of the rainy input and of the restored output against the clean
# ground truth with the output's rain residue and dark artifacts, restore the clean
# ground-truth photographs too (the harm to rain-free images: their PSNR against themselves),
# and write an input | restored | ground-truth grid. docs/EXPERIMENTS.md (2026-12-07, "An output that
# cannot stick"; "Demo, 2026-12-06" for the recipe of that day) gives
# the measurements behind it (the DCD-GAN demos of 2026-12-02 and 2026-11-26 are below it).
# DEMO_NAME, DEMO_DATA, ITERS, CHECKPOINTS_DIR (default checkpoints), RESULTS_DIR (default
# results) and extra train.py flags (as arguments) override it. A second demo of the same
# DEMO_NAME is refused, so no finished run is replaced unasked: OVERWRITE=1 starts it over.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PY
export ITERS=${ITERS:-4000}
NAME=${DEMO_NAME:-rain_demo}
DATA=${DEMO_DATA:-datasets/rain_heavy}
CHECKPOINTS=${CHECKPOINTS_DIR:-checkpoints}
RESULTS=${RESULTS_DIR:-results}
start=$(date +%s)

MAKE_TARGET=demo SCRIPT=demo.sh source scripts/demo_guard.sh

if [ ! -f "$DATA/meta.json" ]; then
    # The photo catalogue is fetched once into datasets/photos (scikit-image + Debian packages).
    "$PY" -m datasets.make_synthetic --kind rain --preset varied_heavy --out "$DATA" --size 96 --test_per_image 4
fi
built=$(date +%s)

bash scripts/train_quick.sh "$DATA" "$NAME" --gpu_ids -1 --checkpoints_dir "$CHECKPOINTS" "$@"
trained=$(date +%s)

"$PY" test.py --dataroot "$DATA" --name "$NAME" --gpu_ids -1 --checkpoints_dir "$CHECKPOINTS" --results_dir "$RESULTS"
# A derainer should leave a rain-free photograph alone: restore the clean testB photographs too.
"$PY" test.py --dataroot "$DATA/testB" --name "$NAME" --gpu_ids -1 --nr_metrics false \
    --checkpoints_dir "$CHECKPOINTS" --results_dir "$RESULTS/$NAME/clean"
"$PY" -m scripts.comparison_grid --dataroot "$DATA" --results "$RESULTS/$NAME/test_latest/images" \
    --label "quick recipe ($ITERS its)" --out "$RESULTS/$NAME/grid.png"
end=$(date +%s)
echo "demo: data $((built - start)) s, training $((trained - built)) s, total $((end - start)) s"
echo "demo: results in $RESULTS/$NAME/test_latest/index.html, grid in $RESULTS/$NAME/grid.png;" \
    "metrics in $RESULTS/$NAME/test_latest/metrics.txt"
cat "$RESULTS/$NAME/test_latest/metrics.txt"
echo "demo: harm to clean images, the clean testB photographs restored and scored against themselves" \
    "(higher PSNR is better; outputs in $RESULTS/$NAME/clean/$NAME/test_latest/images):"
"$PY" evaluate.py --pred "$RESULTS/$NAME/clean/$NAME/test_latest/images" --gt "$DATA/testB" | tail -n 1
