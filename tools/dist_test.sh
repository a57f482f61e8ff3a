#!/usr/bin/env bash
# Distributed testing: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py options]
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec "$(dirname "$0")/torchrun.sh" "$NPROC" "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" "$@"
