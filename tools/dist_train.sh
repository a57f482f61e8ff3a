#!/usr/bin/env bash
# Distributed training: tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "$0")/torchrun.sh" "$NPROC" "$(dirname "$0")/train.py" "$CONFIG" "$@"
