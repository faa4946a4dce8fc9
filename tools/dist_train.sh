#!/usr/bin/env bash
# Train on NGPUS processes of this machine (or of several: set NNODES,
# NODE_RANK, MASTER_ADDR, PORT), one process per GPU; with no GPU, the
# processes run on the CPU with the gloo backend.
#
#   bash tools/dist_train.sh CONFIG NGPUS [train.py flags ...]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash tools/dist_train.sh CONFIG NGPUS [train.py flags ...]" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
here=$(cd "$(dirname "$0")" && pwd)

PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" \
  --node_rank="$NODE_RANK" \
  --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$GPUS" \
  --master_port="$PORT" \
  "$here/train.py" "$CONFIG" --launcher pytorch "$@"
