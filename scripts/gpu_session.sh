#!/usr/bin/env bash
# One session on a single CUDA GPU: train the five zoo models LiteSR ships itself, all at
# once and each to a wall-clock budget, then run the GPU benchmark; results into $OUT.
#
#   BUDGET=380 OUT=/tmp/out bash scripts/gpu_session.sh
#
# The recipes are the CPU ones in configs/ with the GPU overrides below (batch 32, LR patch
# 64, bf16 autocast, channels-last, train.time_budget); each run's exact final config,
# with the calibrated total_iter, is in its experiment folder (config.yml).
# Expects ../shared/data/{train,benchmark/Set5} (PNG or WebP) and, for the benchmark,
# ../shared/weights as in the project's shared folder.
set -u
BUDGET=${BUDGET:-380}
OUT=${OUT:?set OUT to the folder that receives the results}
RUNS=${RUNS:-runs}
DEVICE=${DEVICE:-cuda}   # cpu only to dry-run this script (BENCH=0 then)
BENCH=${BENCH:-1}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$OUT" "$RUNS"
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())' || exit 1

common=(--set datasets.train.batch_size_per_gpu=32 --set datasets.train.num_worker_per_gpu=2
        --set datasets.train.pin_memory=true --set train.channels_last=true --set train.precision=bf16
        --set train.time_budget="$BUDGET" --set val.val_freq=1000 --set logger.save_checkpoint_freq=1000
        --set logger.print_freq=200)
declare -A recipe=(
  [scnet-t-x2]="configs/scnet-t-x2_cpu.yml"
  [scnet-t-x3]="configs/scnet-t-x3_cpu.yml --set datasets.train.gt_size=192"
  [scnet-t-x4]="configs/scnet-t-x4_cpu.yml --set datasets.train.gt_size=256"
  [span-ch48-x3]="configs/span-ch48-x3_cpu.yml --set datasets.train.gt_size=192"
  [lesrcnn-ms]="configs/lesrcnn-ms_cpu.yml --set train.optim_g.lr=3e-4"
)
# A second cycle (PRETRAIN=DIR holding <name>.safetensors from an earlier session): start from
# those weights with a fresh, fitted cosine schedule at half the recipe's peak learning rate.
declare -A restart_lr=([scnet-t-x2]=5e-4 [scnet-t-x3]=5e-4 [scnet-t-x4]=5e-4 [span-ch48-x3]=2.5e-4
                       [lesrcnn-ms]=1.5e-4)
if [ -n "${MODELS:-}" ]; then  # a subset, e.g. MODELS="scnet-t-x2 span-ch48-x3"
  for name in "${!recipe[@]}"; do [[ " $MODELS " == *" $name "* ]] || unset "recipe[$name]"; done
fi
declare -A pid=()
for name in "${!recipe[@]}"; do
  # shellcheck disable=SC2086  # the recipe string holds the config path and its own overrides
  cycle=()
  if [ -n "${PRETRAIN:-}" ] && [ -f "$PRETRAIN/$name.safetensors" ]; then
    cycle=(--set path.pretrain_network_g="$PRETRAIN/$name.safetensors" --set train.optim_g.lr="${restart_lr[$name]}")
  fi
  python3 -m litesr train ${recipe[$name]} "${common[@]}" "${cycle[@]}" --set path.experiments_root="$RUNS/$name" --set name="$name-gpu" \
    --device "$DEVICE" -q >"$RUNS/$name.log" 2>&1 &
  pid[$name]=$!
done
failed=0
for name in "${!pid[@]}"; do
  if wait "${pid[$name]}"; then echo "$name: done"; else echo "$name: FAILED"; tail -n 20 "$RUNS/$name.log"; failed=1; fi
done
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv

# What comes back (at most 16 MiB a file): log, config, metrics, the final weights (best.safetensors
# only if the run ended without them) and the newest training state where it is small (SCNet's).
for name in "${!recipe[@]}"; do
  files=("$name.log" "$name/config.yml" "$name/metrics.jsonl")
  final=$(ls "$RUNS/$name/models/"*.safetensors 2>/dev/null | grep -v /best.safetensors | head -n 1)
  final=${final:-$(ls "$RUNS/$name/models/best.safetensors" 2>/dev/null)}
  [ -n "$final" ] && files+=("${final#$RUNS/}")
  state=$(ls "$RUNS/$name/training_states/"*.state 2>/dev/null | tail -n 1)
  [ -n "$state" ] && [ "$(stat -c %s "$state")" -lt 12000000 ] && files+=("${state#$RUNS/}")
  tar -czf "$OUT/$name.tar.gz" -C "$RUNS" "${files[@]}" || echo "$name: packing failed"
done

if [ "$BENCH" = 1 ]; then
  python3 benchmarks/gpu.py --out "$RUNS/gpu" >"$RUNS/gpu.log" 2>&1 || { echo "gpu benchmark FAILED"; failed=1; }
  tail -n 60 "$RUNS/gpu.log"
  tar -czf "$OUT/gpu.tar.gz" -C "$RUNS" gpu.log $(ls -d "$RUNS/gpu" >/dev/null 2>&1 && echo gpu)
fi
exit $failed
