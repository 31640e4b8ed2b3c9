# Sourced by the demos (demo.sh, demo_haze.sh), not run on its own: refuses (exit 2) to start
# over a demo run that CHECKPOINTS/NAME already holds, unless OVERWRITE=1 or the demo's flags
# ("$@") say --continue_train or --overwrite_run. Reads CHECKPOINTS, NAME, and MAKE_TARGET and
# SCRIPT (how the message names the demo).
asked=${OVERWRITE:-0}
for arg in "$@"; do case "$arg" in --continue_train|--overwrite_run) asked=1 ;; esac; done
if [ "$asked" != 1 ] && [ -f "$CHECKPOINTS/$NAME/latest.pt" ]; then
    echo "$CHECKPOINTS/$NAME already holds a demo run: OVERWRITE=1 make $MAKE_TARGET (or OVERWRITE=1 bash" \
        "scripts/$SCRIPT) starts it over (deletes its checkpoints); DEMO_NAME=another_name keeps it" >&2
    exit 2
fi
