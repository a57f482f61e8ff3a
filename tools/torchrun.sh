#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh: torchrun.sh NUM_PROCS SCRIPT [args]
# GPUs: one process per GPU (NCCL). Without a GPU the processes run on CPU over gloo
# (convnext_backbone.compat). NNODES, NODE_RANK, MASTER_ADDR and PORT configure multi-node runs.
set -euo pipefail
NPROC=$1
SCRIPT=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$SCRIPT" "$@" --launcher pytorch
