#!/usr/bin/env bash
# The two-stage deraining recipe (docs/METHODS.md "Two stages: pseudo pairs"):
#   stage 1  the quick GAN configuration (scripts/train_quick_gan.sh) trains an unpaired DCD-GAN into
#            checkpoints/NAME_stage1; its rain generator G_B is what stage 2 needs;
#   render   the frozen G_B turns every clean training image b into a pseudo rainy G_B(b)
#            (scripts/render_pseudo_pairs.py -> checkpoints/NAME_stage1/pseudo_pairs), whose rain
#            statistics are compared with trainA's and logged;
#   stage 2  the same restoring generator trained with full supervision (--model paired, L1 +
#            SSIM) on those pairs, identity pairs (b, b) among them, into checkpoints/NAME, so that
#            `python test.py --dataroot DATAROOT --name NAME` restores with it.
#   bash scripts/train_two_stage.sh DATAROOT NAME [extra train.py flags for stage 1]
# ITERS (default 4000) is the total budget in stage-1 iterations: STAGE1_SHARE percent of it
# (default 50) trains stage 1, and the rest trains stage 2 at STAGE2_SPEED paired iterations per
# stage-1 iteration (default 4: a paired iteration trains one generator instead of two generators
# and two discriminators, and costs about a quarter of the time; docs/EXPERIMENTS.md). The flags
# go to stage 1; those that shape the generator or place the run (--checkpoints_dir, --gpu_ids,
# --seed, --ngf, --netG, --normG, --rain_layer, --crop_size, --load_size, --preprocess,
# --num_threads, --print_freq) go to stage 2 as well, and STAGE2_FLAGS (words) to stage 2 alone.
# Stage 2's own settings: IDENTITY_SHARE (share of identity pairs, default 0.2), RAIN_SCALE
# (LO,HI: the pseudo rain layer scaled by a random factor, default 0.8,1.5), LAMBDA_SSIM (weight of
# 1 - SSIM, default 1), LAMBDA_CHANNEL (channel consistency, default 0). PSEUDO_TOLERANCE (default
# 0.5) bounds the relative difference of the pseudo rain's coverage and brightness from trainA's;
# PSEUDO_CHECK=warn (default) logs a mismatch, PSEUDO_CHECK=strict stops before stage 2.
# Like train_quick.sh it refuses a NAME that already holds a trained run; OVERWRITE=1 starts both
# stages over. A finished stage 1 (NAME_stage1/stage1_done) is reused when only stage 2 is missing.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/train_two_stage.sh DATAROOT NAME [extra train.py flags for stage 1]" >&2
    exit 2
fi
DATAROOT=$1
NAME=$2
shift 2
whole() {  # whole NAME VALUE LOW HIGH: a whole number in [LOW, HIGH], or exit 2
    if [[ ! "$2" =~ ^[0-9]{1,9}$ ]] || ((10#$2 < $3 || 10#$2 > $4)); then
        echo "$1 must be a whole number from $3 to $4, got '$2'" >&2
        exit 2
    fi
}
ITERS=${ITERS:-4000}
STAGE1_SHARE=${STAGE1_SHARE:-50}
STAGE2_SPEED=${STAGE2_SPEED:-4}
whole ITERS "$ITERS" 4 999999999
whole STAGE1_SHARE "$STAGE1_SHARE" 1 99
whole STAGE2_SPEED "$STAGE2_SPEED" 1 100
ITERS=$((10#$ITERS))
ITERS1=$((ITERS * 10#$STAGE1_SHARE / 100))
ITERS1=$((ITERS1 < 2 ? 2 : ITERS1))
ITERS2=$(((ITERS - ITERS1) * 10#$STAGE2_SPEED))
ITERS2=$((ITERS2 < 2 ? 2 : ITERS2))
case "${OVERWRITE:-0}" in
    0|1) ;;
    *) echo "OVERWRITE must be 1 (start NAME over, deleting its checkpoints) or 0, got '$OVERWRITE'" >&2; exit 2 ;;
esac
case "${PSEUDO_CHECK:-warn}" in
    warn) strict=() ;;
    strict) strict=(--strict) ;;
    *) echo "PSEUDO_CHECK must be warn or strict, got '$PSEUDO_CHECK'" >&2; exit 2 ;;
esac
for arg in "$@"; do
    if [ "$arg" = "--continue_train" ]; then
        echo "train_two_stage.sh does not resume a run: start it over with OVERWRITE=1" >&2
        exit 2
    fi
done

# The flags that stage 2 shares with stage 1, and where the run folders are.
shared_flag() {
    case $1 in
        --checkpoints_dir|--gpu_ids|--seed|--ngf|--netG|--normG|--rain_layer|--crop_size|--load_size|--preprocess|\
        --num_threads|--print_freq) return 0 ;;
        *) return 1 ;;
    esac
}
stage2_shared=()
CHECKPOINTS=./checkpoints
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    key=${args[i]%%=*}
    if shared_flag "$key"; then
        if [[ "${args[i]}" == *=* ]]; then
            value=${args[i]#*=}
        elif ((i + 1 < ${#args[@]})); then
            i=$((i + 1))
            value=${args[i]}
        else
            echo "$key needs a value" >&2
            exit 2
        fi
        stage2_shared+=("$key" "$value")
        if [ "$key" = "--checkpoints_dir" ]; then CHECKPOINTS=$value; fi
    fi
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PY:-}
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
STAGE1="${NAME}_stage1"
RUN1="$CHECKPOINTS/$STAGE1"
RUN2="$CHECKPOINTS/$NAME"
overwrite=()
if [ "${OVERWRITE:-0}" = 1 ]; then
    overwrite=(--overwrite_run)
elif compgen -G "$RUN2/latest.pt" > /dev/null || compgen -G "$RUN2/[0-9]*.pt" > /dev/null; then
    echo "'$RUN2' already holds a trained run: choose another NAME or start it over with OVERWRITE=1" >&2
    exit 2
fi

if [ "${OVERWRITE:-0}" = 0 ] && [ -f "$RUN1/stage1_done" ]; then
    echo "stage 1: reusing the finished run $RUN1" >&2
else
    echo "stage 1: $ITERS1 iterations of the quick configuration into $RUN1" >&2
    rm -f "$RUN1/stage1_done"
    ITERS=$ITERS1 OVERWRITE=${OVERWRITE:-0} bash scripts/train_quick_gan.sh "$DATAROOT" "$STAGE1" "$@"
    touch "$RUN1/stage1_done"
fi

echo "render: pseudo pairs from the frozen G_B of $RUN1" >&2
"$py" -m scripts.render_pseudo_pairs --checkpoint "$RUN1/latest.pt" --dataroot "$DATAROOT" \
    --out "$RUN1/pseudo_pairs" --overwrite --tolerance "${PSEUDO_TOLERANCE:-0.5}" "${strict[@]}"

echo "stage 2: $ITERS2 paired iterations into $RUN2" >&2
# STAGE2_FLAGS is split into words on purpose: it holds several flags.
# shellcheck disable=SC2086
exec "$py" train.py --dataroot "$RUN1/pseudo_pairs" --name "$NAME" "${overwrite[@]}" --model paired \
    --dataset_mode pseudo_pair --pseudo_identity_share "${IDENTITY_SHARE:-0.2}" \
    --rain_scale_range "${RAIN_SCALE:-0.8,1.5}" --lambda_ssim "${LAMBDA_SSIM:-1}" \
    --lambda_channel "${LAMBDA_CHANNEL:-0}" \
    --lr 0.0002 --global_residual --skips --rain_layer gray --normG none --ngf 16 \
    --preprocess crop --crop_size 64 --n_iters $((ITERS2 / 2)) --n_iters_decay $((ITERS2 - ITERS2 / 2)) \
    --display_id 0 --print_freq 100 --save_latest_freq 1000 --num_threads 0 \
    "${stage2_shared[@]}" ${STAGE2_FLAGS:-}
