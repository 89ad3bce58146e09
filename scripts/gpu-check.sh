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
#
# Uses the current environment's python (set PYTHON=...); installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
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

echo "== benchmarks"
"$PY" -m pytest bench -q -p no:cacheprovider --benchmark-json "$OUT/$SLUG.json" ${SESN_GPU_CHECK_BENCH_ARGS:-}
"$PY" -m sesn report bench "$OUT/$SLUG.json" --out "$OUT" --name "$SLUG"

echo "== training (${TRAIN[*]})"
if "$PY" -c "from sesn.data.sources import load_digits; load_digits('mnist')" 2>/dev/null; then
  "$PY" -m sesn reproduce "${TRAIN[@]}" --results "$OUT/$SLUG-train"
elif [ "$DRY" = 1 ]; then
  echo "skipping the training step: no MNIST digits offline (datasets/raw/mnist); the dry run checks the rest"
else
  echo "error: the training check needs MNIST digits offline (datasets/raw/mnist)" >&2; exit 2
fi

echo "== summary ($SLUG, $(( $(date +%s) - start )) s)"
"$PY" - "$OUT" "$SLUG" <<'PYEOF'
import json, sys
from pathlib import Path
out, slug = Path(sys.argv[1]), sys.argv[2]
bench = json.loads((out / f"{slug}.json").read_text())["benchmarks"]
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
