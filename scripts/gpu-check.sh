#!/usr/bin/env bash
# One-command GPU check: the benchmark suite on CUDA (fp32, AMP, channels_last groups of the
# MNIST, WRN and STIR models and the layers; the training-memory groups measure every model
# family on the GPU at its paper batch -- WRN-16-8 SESN at batch 128 with and without the
# memory-saving levels and AMP -- tracked peak and max_memory_allocated), a 2-epoch training
# run of mnist_ses_scalar_28 on the quick MNIST-scale realization (time per epoch, test
# error), results written to bench/results/<device>* and a summary printed.
#
#   bash scripts/gpu-check.sh            # on a CUDA machine (needs MNIST digits offline:
#                                        #   datasets/raw/mnist or --source-dir style folders)
#   bash scripts/gpu-check.sh --dry-run  # on CPU, tiny: checks the plumbing (CI runs this)
#   bash scripts/gpu-check.sh --stages frontier,bench   # choose and order the stages
#
# Stages (default: bench,train; the dry run adds frontier):
#   bench     the benchmark suite on CUDA and its tables;
#   bench-full  every benchmark group at full size, in about 8 minutes on one H100
#             (SESN_BENCH_FULL=1: MNIST batch 128, STL-10's WRN-16-8 at batch 128 with and without
#             the memory-saving levels, STIR batch 16; fp32 and AMP; training memory as CUDA
#             max_memory_allocated beside the meta figure), models first, then memory, then
#             layers; cases left when $BENCH_FULL_BUDGET_S (default 420) s have passed are
#             skipped and named, so the JSON is always written. Output:
#             bench/results/<device>-torch<version>-full.{json,md,csv,png}; prints the
#             efficiency summary (time / CNN, FLOPs / CNN, GFLOP/s / CNN per family);
#   train     the 2-epoch training check;
#   frontier  the equivariance-accuracy frontier on the full-size offline protocol: `sesn
#             reproduce --profile paper --dataset fashion-mnist-scale --columns 28` for the
#             models in $FRONTIER_MODELS (default: CNN and SESN scalar with bases B, D, R and W),
#             realizations $FRONTIER_REALIZATIONS (default "0 1"), $FRONTIER_SHARDS processes
#             sharing the GPU (default 10; logs in <results>/logs), each stopped after
#             $FRONTIER_SWEEP_TIMEOUT s if set (the sweep resumes), then `sesn report
#             trained-equivariance` on the trained models; results in $FRONTIER_RESULTS
#             (default results/fashion_mnist_scale). Needs Fashion-MNIST's IDX files
#             (apt-get install dataset-fashion-mnist, or datasets/raw/fashion-mnist).
#   frontier-quick  the same models and two ablations (scripts/frontier_ablations.py) on the
#             quick MNIST-scale profile (6 epochs, 6,000 training images), realizations
#             $FRONTIER_QUICK_REALIZATIONS (default 0-4), $FRONTIER_QUICK_SHARDS processes (6), in
#             $FRONTIER_QUICK_RESULTS (default results/frontier_quick). Needs the 10,000 MNIST
#             test digits offline (datasets/raw/mnist).
#   generalization  the scale-generalization benchmark's full profile (STIR's data volume:
#             every model, scenarios 1-4, 25 seeds, learning rates 1e-2 and 1e-3, batch 16, up
#             to 200 epochs with early stopping): `sesn generalization --profile full`
#             (GEN_PROFILE=cpu runs the cpu profile's 384 small runs instead, on the GPU: its
#             records say device cuda and are never averaged with CPU runs),
#             $GEN_SHARDS processes sharing the GPU (default 8), each stopped after
#             $GEN_SWEEP_TIMEOUT s if set (the sweep resumes; a 15-minute lease holds only a
#             part of it), scenarios $GEN_SCENARIOS (default "1 2 3 4"), seeds $GEN_SEEDS
#             (default: the profile's), results in $GEN_RESULTS (default
#             results/generalization/<profile>-gpu). Needs the MNIST test digits (the rebuilt set is
#             built on first use) and, for DISCO, its basis file ($SESN_DISCO_DIR).
#
# Uses the current environment's python (set PYTHON=...); installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DRY=0
STAGES=
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --stages) STAGES="$2"; shift ;;
    --stages=*) STAGES="${1#--stages=}" ;;
    *) echo "usage: bash scripts/gpu-check.sh [--dry-run] [--stages bench,bench-full,train,frontier,frontier-quick,generalization]" >&2; exit 2 ;;
  esac
  shift
done
[ -z "$STAGES" ] && { [ "$DRY" = 1 ] && STAGES=bench,bench-full,train,frontier,frontier-quick,generalization || STAGES=bench,train; }
for stage in ${STAGES//,/ }; do
  case "$stage" in
    bench|bench-full|train|frontier|frontier-quick|generalization) ;;
    *) echo "error: unknown stage '$stage' (bench, bench-full, train, frontier, frontier-quick, generalization)" >&2; exit 2 ;;
  esac
done
has_stage() { [[ ",$STAGES," == *",$1,"* ]]; }
start=$(date +%s)

if [ "$DRY" = 1 ]; then
  OUT=$(mktemp -d)
  export SESN_BENCH_DEVICE=cpu SESN_BENCH_QUICK=1
  SLUG="dry-run-cpu"
  TRAIN=(--profile smoke --models test_ses_scalar --columns 28 --device cpu)
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run with --dry-run on CPU')"
  OUT=bench/results
  export SESN_BENCH_DEVICE=cuda
  SLUG=$("$PY" -c "import re, torch; n = torch.cuda.get_device_name(0); print(re.sub(r'[^a-z0-9]+', '-', n.lower()).strip('-') + '-torch' + torch.__version__.split('+')[0].replace('.', '-'))")
  TRAIN=(--profile quick --models mnist_ses_scalar_28 --columns 28 --epochs 2 --device cuda)
fi
mkdir -p "$OUT"
echo "== gpu-check: $SLUG -> $OUT"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

stage_bench() {
  echo "== benchmarks"
  "$PY" -m pytest bench -q -p no:cacheprovider --benchmark-json "$OUT/$SLUG.json" ${SESN_GPU_CHECK_BENCH_ARGS:-}
  "$PY" -m sesn report bench "$OUT/$SLUG.json" --out "$OUT" --name "$SLUG"
}

stage_bench-full() {
  echo "== benchmarks, full size (budget ${BENCH_FULL_BUDGET_S:-420} s)"
  local files=(bench/bench_models.py bench/bench_memory.py bench/bench_layers.py) sel=()
  # the dry run: the plumbing (full settings, quick sizes) on the STIR and WRN groups only
  [ "$DRY" = 1 ] && { files=(bench/bench_models.py bench/bench_memory.py); sel=(-k "stir or wrn or stl10"); }
  SESN_BENCH_FULL=1 SESN_BENCH_BUDGET_S=${BENCH_FULL_BUDGET_S:-420} "$PY" -m pytest "${files[@]}" "${sel[@]}" -q \
    -p no:cacheprovider -rs --benchmark-json "$OUT/$SLUG-full.json" ${SESN_GPU_CHECK_BENCH_ARGS:-}
  "$PY" -m sesn report bench "$OUT/$SLUG-full.json" --out "$OUT" --name "$SLUG-full" > /dev/null
  echo "-- efficiency per family ($OUT/$SLUG-full.md)"
  sed -n '/^## Efficiency per family/,/^## Training memory/p' "$OUT/$SLUG-full.md" | grep '^|' || true
}

stage_train() {
  echo "== training (${TRAIN[*]})"
  if "$PY" -c "from sesn.data.sources import load_digits; load_digits('mnist')" 2>/dev/null; then
    "$PY" -m sesn reproduce "${TRAIN[@]}" --results "$OUT/$SLUG-train"
  elif [ "$DRY" = 1 ]; then
    echo "skipping the training step: no MNIST digits offline (datasets/raw/mnist); the dry run checks the rest"
  else
    echo "error: the training check needs MNIST digits offline (datasets/raw/mnist)" >&2; exit 2
  fi
}

# sharded_sweep RESULTS SHARDS DEVICE ARGS...: `sesn reproduce ARGS` as SHARDS processes sharing
# the device (each realization is built once, by the first shard that needs it: a file lock),
# each stopped after $FRONTIER_SWEEP_TIMEOUT s if set (the sweep resumes); then the table and
# the trained models' own equivariance.
sharded_sweep() {
  local res=$1 n=$2 dev=$3; shift 3
  echo "== sesn reproduce $* ($n processes on $dev) -> $res"
  local pids=() k limit=${FRONTIER_SWEEP_TIMEOUT:-0} failed=0
  mkdir -p "$res/logs"
  for ((k = 0; k < n; k++)); do
    OMP_NUM_THREADS=1 timeout "$limit" "$PY" -m sesn reproduce "$@" --results "$res" --device "$dev" \
      --shard "$k/$n" --no-table > "$res/logs/shard$k-of-$n.log" 2>&1 &
    pids+=($!)
  done
  for k in "${!pids[@]}"; do wait "${pids[$k]}" || { failed=1; echo "shard $k failed:"; tail -5 "$res/logs/shard$k-of-$n.log"; }; done
  "$PY" -m sesn reproduce table --results "$res"
  "$PY" -m sesn report trained-equivariance --results "$res" --device "$dev"
  return $failed
}

FRONTIER_DEFAULT_MODELS="mnist_cnn_28 mnist_ses_scalar_28 mnist_disco_scalar_28 mnist_sesr_scalar_28 mnist_sesw_scalar_28"

stage_frontier() {
  local models=${FRONTIER_MODELS:-$FRONTIER_DEFAULT_MODELS}
  local reals=${FRONTIER_REALIZATIONS:-0 1} n=${FRONTIER_SHARDS:-10} res=${FRONTIER_RESULTS:-results/fashion_mnist_scale}
  if [ "$DRY" = 1 ]; then  # the plumbing on CPU: smoke profile, one epoch, the 1,000 test digits as source
    export SESN_FASHION_MNIST_DIR=${SESN_FASHION_MNIST_DIR:-tests/data/mnist}
    sharded_sweep "$OUT/frontier" 2 cpu --dataset fashion-mnist-scale --profile smoke --columns 28 \
      --models mnist_cnn_28 test_ses_scalar --realizations 0
  else
    sharded_sweep "$res" "$n" cuda --dataset fashion-mnist-scale --profile paper --columns 28 --models $models \
      --realizations $reals
  fi
}

stage_frontier-quick() {
  # the frontier's models and two ablations (scripts/frontier_ablations.py, a plug-in)
  local models=${FRONTIER_QUICK_MODELS:-$FRONTIER_DEFAULT_MODELS mnist_ablation_disco_dilated_scalar_28 mnist_ablation_sesr_span14_scalar_28}
  if [ "$DRY" = 1 ]; then  # the plumbing on CPU: the 1,000 test digits stand in for the 10,000
    export SESN_MNIST_DIR=${SESN_MNIST_DIR:-tests/data/mnist}
    models="mnist_cnn_28 test_ses_scalar mnist_ablation_disco_dilated_scalar_28"
    SESN_IMPORT=frontier_ablations PYTHONPATH="scripts${PYTHONPATH:+:$PYTHONPATH}" sharded_sweep \
      "$OUT/frontier-quick" 2 cpu --profile smoke --columns 28 --models $models --realizations 0 --epochs 1
  else
    SESN_IMPORT=frontier_ablations PYTHONPATH="scripts${PYTHONPATH:+:$PYTHONPATH}" sharded_sweep \
      "${FRONTIER_QUICK_RESULTS:-results/frontier_quick}" "${FRONTIER_QUICK_SHARDS:-6}" cuda \
      --profile quick --columns 28 --models $models --realizations ${FRONTIER_QUICK_REALIZATIONS:-0 1 2 3 4}
  fi
}

stage_generalization() {
  local profile=${GEN_PROFILE:-full} pids=() failed=0 k
  local n=${GEN_SHARDS:-8} res=${GEN_RESULTS:-results/generalization/$profile-gpu}
  local args=(--profile "$profile" --quiet --no-table --scenarios ${GEN_SCENARIOS:-1 2 3 4})
  [ -n "${GEN_SEEDS:-}" ] && args+=(--seeds $GEN_SEEDS)
  export SESN_DISCO_DIR=${SESN_DISCO_DIR:-tests/data/disco}  # DISCO's published MNIST basis (tracked)
  if [ "$DRY" = 1 ]; then  # the plumbing on CPU: the smoke profile on a set rebuilt from the 1,000 test digits
    res="$OUT/generalization" n=2
    SESN_MNIST_DIR=${SESN_MNIST_DIR:-tests/data/mnist} "$PY" -m sesn data stir --instances 3 --root "$OUT/data" >/dev/null
    args=(--profile smoke --quiet --no-table --data "$(ls "$OUT"/data/stir/*.npz)" --models stir_cnn stir_gdn_max stir_fovmax)
  fi
  mkdir -p "$res/logs"
  for ((k = 0; k < n; k++)); do
    if [ -n "${GEN_SWEEP_TIMEOUT:-}" ]; then
      timeout "$GEN_SWEEP_TIMEOUT" "$PY" -m sesn generalization "${args[@]}" --results "$res" --shard "$k/$n" \
        > "$res/logs/shard$k.log" 2>&1 & pids+=($!)
    else
      "$PY" -m sesn generalization "${args[@]}" --results "$res" --shard "$k/$n" > "$res/logs/shard$k.log" 2>&1 &
      pids+=($!)
    fi
  done
  for k in "${pids[@]}"; do wait "$k" || failed=1; done
  "$PY" -m sesn generalization table --results "$res"
  return $failed
}

for stage in ${STAGES//,/ }; do "stage_$stage"; done

echo "== summary ($SLUG, $(( $(date +%s) - start )) s)"
"$PY" - "$OUT" "$SLUG" <<'PYEOF'
import json, sys
from pathlib import Path
out, slug = Path(sys.argv[1]), sys.argv[2]
path = out / f"{slug}.json"
bench = json.loads(path.read_text())["benchmarks"] if path.exists() else []
if bench:
    peak = max((b["extra_info"].get("peak_memory_bytes") or 0) for b in bench)
    print(f"benchmarks: {len(bench)} cases, largest peak memory {peak / 2**20:.0f} MiB; table: {out / (slug + '.md')}")
mem = [b for b in bench if b["extra_info"].get("case") == "memory"]
if mem:
    print("training memory (one step at the paper batch; tracked tensor peak / CUDA max allocated, GiB):")
    for b in mem:
        e = b["extra_info"]
        cuda = e.get("cuda_max_allocated_bytes")
        print(f"  {b['name']:45s} batch {e['batch']:4d}  {e['peak_memory_bytes'] / 2**30:7.2f}"
              + (f"  {cuda / 2**30:7.2f}" if cuda else ""))
for rec in sorted((out / f"{slug}-train").glob("runs/**/record.json")):
    r = json.loads(rec.read_text())
    print(f"training {r['model']}: {r['epochs']} epoch(s), {r['seconds_per_epoch']:.1f} s/epoch, test error {r['test_error']:.2f} % on {r['device']}")
PYEOF
