#!/usr/bin/env bash
# The GPU check (issue #13) in one command: the CUDA tests, training and inference speed at
# the paper's configuration, a short quality run and torch.compile. Each part runs under a
# time box and writes its results as it ends, so a run cut off early still reports.
#
#   bash scripts/gpu_check.sh --prepare   here, online: build the data and fetch the wheels to carry
#   bash scripts/gpu_check.sh             on the GPU machine (DEVELOPERS.md, "Running the GPU check")
#   bash scripts/gpu_check.sh --smoke     the same parts on the CPU at toy sizes (CI runs it)
#
#   --out DIR     results folder; default $OUT when set, else docs/results/gpu/<date>
#                 (--smoke: results/gpu_check_smoke, emptied first)
#   --parts LIST  some of tests,speed,quality,compile (default: all four, in this order)
# GPU_CHECK_SECONDS (default 480; 1200 with --smoke) bounds the whole run; PY picks the Python (default
# .venv/bin/python if there is one, else python3). Results: scripts/gpu_check.py's docstring.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each part's time box in seconds; the whole run's limit cuts the later ones shorter.
TESTS_CAP=90
SPEED_CAP=130
QUALITY_CAP=250
COMPILE_CAP=300
DATA=datasets/rain_heavy  # the embedded heavy synthetic rain, built by --prepare and carried

die() { echo "gpu_check: $*" >&2; exit 2; }

choose_python() {
    if [ -n "${PY:-}" ]; then return; fi
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
}

# Toy sizes for --smoke, the paper's configuration (ngf 64, crop 256, batch 1 and 4) otherwise.
configure() {
    if [ "$MODE" = smoke ]; then
        GPU=-1
        NET=(--ngf 4 --ndf 4 --netF_nc 16 --num_patches 16 --netG resnet_6blocks --crop_size 32)
        # GPU_CHECK_TIMED: more timed iterations (the tests use it to make a part outlast its box).
        BATCHES=1,2 TIMED=${GPU_CHECK_TIMED:-1} WARMUP=0 INFER_SIZES=64,96x64 INFER_TILE=64
        QUALITY_FLAGS=(--gpu_ids -1 --ngf 4 --netG resnet_6blocks --crop_size 32)
        CALIBRATION_ITERS=20 CALIBRATION_FREQ=4 QUALITY_TRAIN_SECONDS=5
        # A CPU shared with other work can take several times the minute a quiet one needs:
        # the boxes guard the GPU's 8 minutes, not the smoke run's.
        TESTS_CAP=300 SPEED_CAP=400 QUALITY_CAP=400 COMPILE_CAP=300 DEFAULT_TOTAL=1200
    else
        GPU=0
        NET=(--ngf 64 --crop_size 256)
        BATCHES=1,4 TIMED=8 WARMUP=1 INFER_SIZES=1024,4000x3000 INFER_TILE=1024
        QUALITY_FLAGS=(--gpu_ids 0)
        CALIBRATION_ITERS=300 CALIBRATION_FREQ=50 QUALITY_TRAIN_SECONDS=170 DEFAULT_TOTAL=480
    fi
}

note() { echo "$*" >"$WORK/$PART.note"; }
seconds_left() { echo $((PART_DEADLINE - $(date +%s))); }

# ----- the parts: each runs as `bash gpu_check.sh --part NAME` under `timeout` ---------------
part_tests() {
    "$PY" -m pytest -q -rfEx -p no:cacheprovider tests/test_cuda.py -k "not compile" --junitxml "$OUT_DIR/tests.xml"
}

part_speed() {
    local status=0
    local common=(--gpu_ids "$GPU" "${NET[@]}" --iters "$TIMED" --warmup "$WARMUP" --infer_sizes ""
                  --out "$OUT_DIR/speed.jsonl")
    # One failing configuration (out of memory, say) must not hide the others.
    bench() { "$PY" -m scripts.benchmark_speed "$@" || status=$?; }
    bench "${common[@]}" --model dcdgan --dcd_variant official,paper --batch_size "$BATCHES" --amp false,true
    bench --gpu_ids "$GPU" "${NET[@]}" --model dcdgan --skip_train --skip_peak --amp false,true \
        --infer_sizes "$INFER_SIZES" --infer_tile "$INFER_TILE" --infer_iters 3 --out "$OUT_DIR/speed.jsonl"
    bench "${common[@]}" --skip_peak --model dcdgan --dcd_variant official,paper --batch_size "$BATCHES" \
        --amp --channels_last
    bench "${common[@]}" --skip_peak --model dcl --batch_size "$BATCHES" --amp false,true
    bench "${common[@]}" --skip_peak --model dcl --batch_size "$BATCHES" --amp --channels_last
    # The training loop's NaN check reads a flag back before every update; this row prices it.
    bench "${common[@]}" --skip_peak --model dcdgan --batch_size 1 --amp --nan_guard
    return $status
}

part_quality() {
    local data=$DATA
    if [ "$MODE" = smoke ]; then
        data=$WORK/rain
        "$PY" -m scripts.gpu_check smoke-data "$data"
    fi
    [ -f "$data/meta.json" ] || die "no dataset in $data: run 'bash scripts/gpu_check.sh --prepare' and carry it"
    local ck=$WORK/checkpoints
    local flags=("${QUALITY_FLAGS[@]}" --checkpoints_dir "$ck")
    # Time a short run of the same configuration, then size ITERS to the training budget, less
    # if the part's box is short (the calibration, start-up, test.py and the scores need ~80 s).
    local iters budget=$(($(seconds_left) - 80))
    ((budget < QUALITY_TRAIN_SECONDS)) || budget=$QUALITY_TRAIN_SECONDS
    ((budget > 0)) || die "no time left to train"
    iters=$(ITERS=1000 "$PY" -m scripts.gpu_check calibrate --budget "$budget" --print_freq "$CALIBRATION_FREQ" \
        "$OUT_DIR" -- bash scripts/train_quick.sh "$data" gpu_check_calibration "${flags[@]}" \
        --max_iters "$CALIBRATION_ITERS" --print_freq "$CALIBRATION_FREQ" --save_latest_freq 1000000)
    local box=$(($(seconds_left) - 40)) start=$SECONDS train_rc=0
    ((box > 0)) || die "no time left to train"
    # SIGTERM at the box: train.py saves 'latest' and stops, and the scores are of that.
    # --foreground keeps train.py in this part's process group, where the part's own box reaches it.
    ITERS=$iters timeout --foreground -s TERM -k 20 "$box" bash scripts/train_quick.sh "$data" gpu_check_quality \
        "${flags[@]}" || train_rc=$?
    local train_seconds=$((SECONDS - start))
    "$PY" test.py --dataroot "$data" --name gpu_check_quality --checkpoints_dir "$ck" --results_dir "$WORK/results" \
        --gpu_ids "$GPU"
    "$PY" -m scripts.gpu_check quality "$OUT_DIR" --results "$WORK/results/gpu_check_quality/test_latest" \
        --checkpoint "$ck/gpu_check_quality/latest.pt" --train_rc "$train_rc" --train_seconds "$train_seconds"
}

part_compile() {
    local status=0
    "$PY" -m pytest -q -rfEx -p no:cacheprovider tests/test_cuda.py -k compile --junitxml "$OUT_DIR/compile.xml" \
        || status=$?
    if [ "$MODE" = smoke ]; then
        note "no benchmark in --smoke: compiling takes minutes on a CPU"
    elif ! "$PY" -m scripts.gpu_check passed "$OUT_DIR/compile.xml"; then
        note "no benchmark: the compile test did not pass (see the tests section)"
    else
        "$PY" -m scripts.benchmark_speed --gpu_ids "$GPU" "${NET[@]}" --iters "$TIMED" --warmup 2 --skip_peak \
            --model dcdgan --batch_size 1 --amp --compile --infer_sizes 1024 --out "$OUT_DIR/compile.jsonl" \
            || status=$?
    fi
    return $status
}

# ----- preparing, here ------------------------------------------------------------------
prepare() {
    if [ ! -f "$DATA/meta.json" ]; then
        "$PY" -m datasets.make_synthetic --kind rain --preset varied_heavy --out "$DATA" --size 96 --test_per_image 4
    fi
    # The GPU machine lacks dominate (test.py's HTML page) and has no network.
    local version
    version=$("$PY" -c "import dominate; print(dominate.__version__)")
    mkdir -p .whl
    rm -f .whl/dominate-*.whl
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 -d .whl "dominate==$version"
    local bytes
    bytes=$({ git ls-files -z -co --exclude-standard; find .whl "$DATA" -type f -print0; } \
        | du -cb --files0-from=- | tail -1 | cut -f1)
    echo "what travels: $((bytes / 1048576)) MiB (the device tool takes 64)"
    ((bytes < 64 * 1048576)) || die "over the 64 MiB the device tool carries"
    local commit
    commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs/results' || echo +changes)
    echo "ready; on the GPU machine (the device tool's run):"
    echo "  command=\"GPU_CHECK_COMMIT=$commit bash scripts/gpu_check.sh\", carry=[\".whl\", \"$DATA\"], timeout_s=560"
}

# The GPU machine's Python lacks dominate: install the wheels --prepare put in .whl/.
install_carried_wheels() {
    if "$PY" -c "import dominate" 2>/dev/null; then return; fi
    compgen -G ".whl/*.whl" >/dev/null || die "dominate is missing and .whl/ holds no wheels: run --prepare and carry .whl"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
}

run_part() {
    local name=$1 cap_name="${1^^}_CAP"
    local cap=${!cap_name} left=$((DEADLINE - SECONDS)) start=$SECONDS rc=0
    ((left > cap)) || cap=$left
    if ((cap < 10)); then
        "$PY" -m scripts.gpu_check record "$OUT_DIR" "$name" -1 0 \
            --note "skipped: the run's ${TOTAL} s were spent; rerun with --parts $name"
    else
        echo "== $name: up to $cap s" | tee -a "$LOG"
        # -s INT: pytest still writes its report, train.py saves; -k: what ignores it is killed.
        PART=$name PART_DEADLINE=$(($(date +%s) + cap)) timeout -s INT -k 20 "$cap" bash "$SELF" --part "$name" \
            >>"$LOG" 2>&1 || rc=$?
        "$PY" -m scripts.gpu_check record "$OUT_DIR" "$name" "$rc" $((SECONDS - start)) \
            --note "$(cat "$WORK/$name.note" 2>/dev/null || true)"
        ((rc == 0)) || FAILED=1
    fi
    "$PY" -m scripts.gpu_check summary "$OUT_DIR"
    echo "== $name: $(tail -1 "$OUT_DIR/parts.jsonl")" | tee -a "$LOG"
}

SELF=$(pwd)/scripts/gpu_check.sh
MODE=full OUT_DIR= PARTS=tests,speed,quality,compile PART_NAME=
while [ $# -gt 0 ]; do
    case $1 in
        --prepare) MODE=prepare ;;
        --smoke) MODE=smoke ;;
        --out) OUT_DIR=$2; shift ;;
        --parts) PARTS=$2; shift ;;
        --part) PART_NAME=$2; shift ;;  # internal: one part, under the caller's time box
        *) die "unknown argument '$1' (see the top of $0)" ;;
    esac
    shift
done
choose_python

if [ -n "$PART_NAME" ]; then
    MODE=$GPU_CHECK_MODE OUT_DIR=$GPU_CHECK_OUT WORK=$GPU_CHECK_WORK
    configure
    "part_$PART_NAME"
    exit
fi
if [ "$MODE" = prepare ]; then
    prepare
    exit
fi
for part in ${PARTS//,/ }; do
    case $part in tests | speed | quality | compile) ;; *) die "unknown part '$part'" ;; esac
done

if [ "$MODE" = smoke ]; then
    OUT_DIR=${OUT_DIR:-results/gpu_check_smoke}
    rm -rf "$OUT_DIR"
else
    OUT_DIR=${OUT_DIR:-${OUT:-docs/results/gpu/$(date +%F)}}
    "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())" \
        || die "no CUDA GPU here; 'bash scripts/gpu_check.sh --smoke' runs the same parts on the CPU"
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LOG=$OUT_DIR/log.txt
configure
TOTAL=${GPU_CHECK_SECONDS:-$DEFAULT_TOTAL}
DEADLINE=$((SECONDS + TOTAL))
FAILED=0
export GPU_CHECK_MODE=$MODE GPU_CHECK_OUT=$OUT_DIR GPU_CHECK_WORK=$WORK PY
install_carried_wheels
"$PY" -m scripts.gpu_check environment "$OUT_DIR" --mode "$MODE"
for part in ${PARTS//,/ }; do
    run_part "$part"
done
cat "$OUT_DIR/summary.md"
echo "results: $OUT_DIR"
exit $FAILED
