#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh: torchrun.sh NUM_PROCS SCRIPT [args]
# GPUs: one process per GPU (NCCL). Without a GPU the processes run on CPU over gloo
# (convnext_backbone.cli.distributed). NNODES, NODE_RANK, MASTER_ADDR and PORT configure
# multi-node runs. The interpreter is the project's environment (CONVNEXT_VENV, default
# <repo>/.venv, as tools/setup_env.sh builds it), else `python` on PATH; CONVNEXT_PYTHON names
# another one. (A plain PYTHON variable is ignored on purpose: shells and other tools set it
# with other meanings, e.g. the interpreter that builds an environment.)
set -euo pipefail
NPROC=$1
SCRIPT=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${CONVNEXT_VENV:-$ROOT/.venv}
RUN_PYTHON=${CONVNEXT_PYTHON:-$( [ -x "$VENV/bin/python" ] && echo "$VENV/bin/python" || echo python)}
exec "$RUN_PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$SCRIPT" "$@" --launcher pytorch
