# Sourced by the quick launchers (train_quick.sh, train_quick_haze.sh), not run on its own.
# Takes the launcher's arguments DATAROOT NAME [flags]: sets DATAROOT and NAME and shifts them
# off, so "$@" is left holding the flags (usage: exit 2). Reads the environment: ITERS (the iteration budget, default 4000) and OVERWRITE (1: start the
# run over, deleting its checkpoints; 0, the default: refuse a finished run). Sets ITERS to a
# plain number and the array `overwrite` (empty or --overwrite_run); exits 2 on a bad value.
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/$(basename "$0") DATAROOT NAME [extra train.py flags]" >&2
    exit 2
fi
DATAROOT=$1
NAME=$2
shift 2
ITERS=${ITERS:-4000}
# Bash arithmetic would read a word as a variable (0) and wrap a long number around.
if [[ ! "$ITERS" =~ ^[0-9]{1,9}$ ]] || ((10#$ITERS < 2)); then
    echo "ITERS must be a whole number of iterations from 2 to 999999999, got '$ITERS'" >&2
    exit 2
fi
ITERS=$((10#$ITERS))
overwrite=()
case "${OVERWRITE:-0}" in
    1) overwrite=(--overwrite_run) ;;
    0) ;;
    *) echo "OVERWRITE must be 1 (start NAME over, deleting its checkpoints) or 0, got '$OVERWRITE'" >&2; exit 2 ;;
esac
