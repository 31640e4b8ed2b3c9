# Sourced by the scripts/train_<model>_<dataset>.sh launchers, not run on its own.
# Moves to the repository root (DATAROOT and other relative paths are relative to it) and
# defines `train_py ARGS...`, which runs train.py with PY (default .venv/bin/python if it
# exists, else python3).
cd "$(dirname "${BASH_SOURCE[0]}")/.."

train_py() {
    local py=${PY:-}
    if [ -z "$py" ]; then
        if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
    fi
    exec "$py" train.py "$@"
}
