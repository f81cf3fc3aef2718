#!/usr/bin/env bash
# costlens on a GPU machine, in one go (well within ten minutes on an H100/H200):
#   costlens device (calibrated peaks), profile --time for five models in float32 and
#   bfloat16 at batch 1 and 64, compare inception-naive inception --time, googlenet and
#   resnet50 with CUDA graphs beside eager and per-layer time both ways (replay and in place),
#   and bench/gpu_checks.py (issue 20's GPU targets: the in-place layer sum against the graph's
#   replay, each calibrated peak against the best torch matmul of a wider sweep).
# Everything lands under $OUT (default ./gpu-out): a log of every command's output
# and one archive with the JSON profiles and pages.
#
# The GPU machines have Python 3.12 with torch (CUDA), pandas, click and tqdm, and no
# network. plotly travels as a wheel: run `bash bench/gpu.sh --fetch-wheels` here first
# (it downloads plotly into .whl/, which git ignores), and carry .whl to the machine.
# For a dry run on a machine without a GPU: DEVICE=cpu MODELS=inception BATCHES=1,2 bash bench/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}

if [ "${1:-}" = "--fetch-wheels" ]; then
  mkdir -p .whl && grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  exec "$PY" -m pip download -q --no-deps --only-binary=:all: -d .whl "plotly==$("$PY" -c 'import plotly; print(plotly.__version__)')"
fi

OUT=${OUT:-$ROOT/gpu-out}
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-resnet50 vgg16 googlenet inception-naive inception}
DTYPES=${DTYPES:-float32 bfloat16}
BATCHES=${BATCHES:-1,64}
LIMIT=${LIMIT:-120}   # seconds one command may take before it is stopped
mkdir -p "$OUT"
WORK=$(mktemp -d)
LOG="$OUT/gpu-log.txt"
: > "$LOG"

if ! "$PY" -c "import plotly" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/costlens-site "$ROOT"/.whl/plotly-*.whl \
    || { echo "plotly is missing and no wheel in .whl/: run bash bench/gpu.sh --fetch-wheels first" | tee -a "$LOG"; exit 2; }
  export PYTHONPATH=/tmp/costlens-site
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 XDG_CACHE_HOME="$WORK/cache"

run() {  # run DIR ARGS...: costlens ARGS in its own directory (pages land in DIR/reports), logged
  local dir=$1; shift
  mkdir -p "$WORK/$dir"
  echo "\$ costlens $*" >> "$LOG"
  local started=$SECONDS
  (cd "$WORK/$dir" && timeout "$LIMIT" "$PY" -m costlens "$@") >> "$LOG" 2>&1
  echo "[exit $? after $((SECONDS - started)) s]" >> "$LOG"
  echo >> "$LOG"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} >> "$LOG" 2>&1
run device device --device "$DEVICE"
run device device --device "$DEVICE" --format json -o device.json
for dtype in $DTYPES; do
  for model in $MODELS; do
    run "$model-$dtype" profile "$model" --time --device "$DEVICE" --dtype "$dtype" --batch "$BATCHES" \
      --save "$model-$dtype.json" --plotlyjs ../js
  done
done
for batch in ${BATCHES//,/ }; do
  run "compare-b$batch" compare inception-naive inception --time --device "$DEVICE" --batch "$batch" --plotlyjs ../js \
    --format json -o compare.json
  run "compare-b$batch" compare inception-naive inception --time --device "$DEVICE" --batch "$batch" --plotlyjs ../js
done
if "$PY" -m costlens profile --help 2>/dev/null | grep -q -- --cuda-graphs; then
  for model in googlenet resnet50; do
    run "$model-graphs" profile "$model" --time --device "$DEVICE" --batch 1 --cuda-graphs --layer-time-method both \
      --save "$model-graphs.json" --plotlyjs ../js
  done
fi
echo "\$ python bench/gpu_checks.py" >> "$LOG"
(cd "$WORK" && timeout $((LIMIT * 4)) "$PY" "$ROOT/bench/gpu_checks.py" --json "$WORK/gpu-checks.json") >> "$LOG" 2>&1
echo "[exit $?]" >> "$LOG"
tar czf "$OUT/gpu-out.tgz" -C "$WORK" --exclude cache .
echo "wrote $LOG and $OUT/gpu-out.tgz ($(du -h "$OUT/gpu-out.tgz" | cut -f1)) in $SECONDS s" | tee -a "$LOG"
