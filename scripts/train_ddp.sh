#!/usr/bin/env bash
# DCD-GAN with DistributedDataParallel: one process per GPU, launched by torchrun.
#   NPROC=4 bash scripts/train_ddp.sh [extra train.py flags, e.g. --dcd_variant paper]
# torchrun gives each process RANK / WORLD_SIZE / LOCAL_RANK; process i trains on cuda:i
# (NCCL) with its own shard of the data, gradients are averaged every step, and rank 0
# alone logs, writes the HTML page and saves checkpoints (plain state dicts: test.py and
# --continue_train load them with any number of processes).
# Each process takes --batch_size images per step, so the effective batch is NPROC times
# larger and an epoch has NPROC times fewer iterations; the learning rate is not scaled.
# Several machines: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host0 [MASTER_PORT=29500] on each.
# Without GPUs (--gpu_ids -1) the processes run on the CPU with gloo, as the tests do.
# DATAROOT (default datasets/rain100l), NAME and PY override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
if [ -z "${NPROC:-}" ]; then
    NPROC=$("$PY" -c "import torch; print(max(torch.cuda.device_count(), 1))")
fi
NNODES=${NNODES:-1}
if [ "$NNODES" -gt 1 ]; then
    launch=(--nnodes "$NNODES" --node_rank "${NODE_RANK:?set NODE_RANK on each machine}"
            --master_addr "${MASTER_ADDR:?set MASTER_ADDR to the host of rank 0}" --master_port "${MASTER_PORT:-29500}")
else
    launch=(--standalone)
fi
DATAROOT=${DATAROOT:-datasets/rain100l}
NAME=${NAME:-dcdgan_rain100l_ddp}
exec "$PY" -m torch.distributed.run "${launch[@]}" --nproc_per_node "$NPROC" train.py \
    --dataroot "$DATAROOT" --name "$NAME" --model dcdgan --amp \
    "$@"
