#!/usr/bin/env bash
# The GPU check: what only a machine with an NVIDIA GPU can tell, in one run of a few
# minutes from a fresh checkout with the project installed (make test's set-up):
#
#   benchmarks/gpu_check.sh            # NMT_DATA_MIRROR: the data mirror, for offline use
#
# 1. the CUDA tests (the tests that skip without CUDA);
# 2. bench_train.py on CUDA, fp32 and bf16, at the reference size (hidden 256) and 4x wider
#    (hidden 1,024): target tokens/s and the share of the GPU's measured matmul peak;
# 3. bench_decode.py on CUDA (an untrained default-size model on synthetic sentences in a
#    fresh checkout);
# 4. the tiny profile pipeline with train.device=cuda and evaluate.device=cuda, in a clone;
# 5. two-process DDP training of the tiny profile (train.processes=2), when there are 2
#    GPUs and the param exists.
#
# Ends with one summary table; exits 1 if a step failed. Without CUDA it says so and exits
# 0. Each step's full output goes to $GPU_CHECK_LOG (default: a temporary folder). A step
# that would start past $GPU_CHECK_BUDGET seconds (default 470) is skipped, and each one
# is cut at what is left of it, so the whole check ends within 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -x .venv/bin/python ] && export PATH="$ROOT/.venv/bin:$PATH"
if [ -z "${NMT_DATA_MIRROR:-}" ] && [ -d ../shared/data/mirror ]; then
  NMT_DATA_MIRROR="$(cd ../shared/data/mirror && pwd)"
  export NMT_DATA_MIRROR
fi

read -r CUDA GPUS TORCH < <(python -c '
import torch
cuda = torch.cuda.is_available()
print(int(cuda), torch.cuda.device_count() if cuda else 0, torch.__version__,
      f"(CUDA {torch.version.cuda})" if torch.version.cuda else "(built without CUDA)")')
if [ "${CUDA:-0}" != 1 ]; then
  echo "gpu_check: CUDA is not available here (torch $TORCH): no GPU check to run; skipped."
  exit 0
fi

LOG=${GPU_CHECK_LOG:-$(mktemp -d -t gpu-check-XXXXXX)}
mkdir -p "$LOG"
SUMMARY=()
FAILED=0
echo "gpu_check: $GPUS CUDA device(s), torch $TORCH; logs in $LOG"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null

# step NAME LIMIT_S COMMAND...: run it, log it, time it; its result is the last line of
# the log that matches $PICK (default: the last line).
step() {
  local name=$1 limit=$2
  shift 2
  local log="$LOG/$name.log" start=$SECONDS rc left=$((${GPU_CHECK_BUDGET:-470} - SECONDS))
  if [ "$left" -lt 20 ]; then
    SUMMARY+=("$(printf '| %-22s | %4ss | %s |' "$name" 0 "skipped: the time budget is spent")")
    FAILED=1
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name: $*"
  timeout "$limit" "$@" > "$log" 2>&1
  rc=$?
  local took=$((SECONDS - start)) result
  if [ $rc -eq 0 ]; then
    result=$(grep -E "${PICK:-.}" "$log" | tail -n "${PICK_LINES:-1}" | tr '\n' ' ')
  else
    result="FAILED (exit $rc; $log)"
    FAILED=1
    tail -n 20 "$log"
  fi
  SUMMARY+=("$(printf '| %-22s | %4ss | %s |' "$name" "$took" "$result")")
  return $rc
}

PICK="passed|failed|skipped" step cuda-tests 120 \
  python -m pytest -q -p no:cacheprovider -rs -k cuda tests/

for hidden in 256 1024; do
  PICK="^\((b|c)\)" PICK_LINES=2 step "train-hidden-$hidden" 150 \
    python benchmarks/bench_train.py --device cuda --baseline-seconds 0 --batches 120 \
    --threads 4 --hidden "$hidden"
done

PICK="^round|^beam" PICK_LINES=2 step decode 90 \
  python benchmarks/bench_decode.py --device cuda --sentences 512 --sequential 32 --rounds 1

# The tiny pipeline on CUDA, in a clone of this checkout's last commit.
WORK=$(mktemp -d -t gpu-check-repo-XXXXXX)
git clone -q "$ROOT" "$WORK/repo"
# tiny.sh [SECTION.KEY=VALUE ...]: the tiny profile on CUDA, with these settings too.
cat > "$WORK/tiny.sh" <<'EOF'
set -euo pipefail
cd "$(dirname "$0")/repo"
git checkout -q params.yaml
nmt profile apply tiny > /dev/null
python - "train.device=cuda" "evaluate.device=cuda" "$@" <<'PY'
import sys, yaml
params = yaml.safe_load(open("params.yaml"))
for setting in sys.argv[1:]:
    key, value = setting.split("=")
    section, name = key.split(".")
    params[section][name] = yaml.safe_load(value)
yaml.safe_dump(params, open("params.yaml", "w"), sort_keys=False)
PY
dvc repro
python -c 'import json; print("train@gru on", json.load(open("metrics/train/gru.json"))["device"])'
EOF
PICK="train@gru on" step tiny-pipeline-cuda 180 bash "$WORK/tiny.sh"

if [ "$GPUS" -lt 2 ]; then
  SUMMARY+=("| ddp-2-processes        |   0s | skipped: $GPUS GPU |")
elif ! python -c 'from nmt.config import TrainParams; assert "processes" in TrainParams.model_fields' 2> /dev/null; then
  SUMMARY+=("| ddp-2-processes        |   0s | skipped: no train.processes param in this checkout |")
else
  PICK="train@gru on" step ddp-2-processes 150 bash "$WORK/tiny.sh" train.processes=2
fi
rm -rf "$WORK"

echo
echo "| step                   | time  | result |"
echo "|------------------------|-------|--------|"
printf '%s\n' "${SUMMARY[@]}"
exit $FAILED
