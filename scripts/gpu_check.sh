#!/usr/bin/env bash
# The CUDA checks and the GPU benchmark, as one prepared script for a machine with a GPU and no
# network (under 8 minutes on one H100).
#
#   bash scripts/gpu_check.sh [OUT] [WHEELS]
#
# OUT (default: $OUT, else gpu_check_out/) receives the tables and logs. WHEELS (default: .whl/)
# holds the wheels of what the machine lacks (hydra-core, omegaconf, antlr4-python3-runtime,
# nibabel, numba, llvmlite: the machine is expected to carry torch with CUDA, triton and scipy);
# they are installed with --no-index into a private folder, brainfit itself runs from this
# checkout. Fetch them on a machine with network access, for the GPU machine's Python (3.12):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl hydra-core omegaconf antlr4-python3-runtime==4.9.3 nibabel numba llvmlite
#
# Each step has its own time limit and writes its own file; a failing step is reported in
# OUT/summary.md and the script goes on with the next.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu_check_out}}
WHEELS=${2:-.whl}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.md"
echo "# gpu_check $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null)" > "$SUMMARY"

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to OUT/NAME.txt, note the outcome
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    echo "- $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$SUMMARY"
}

if ls "$WHEELS"/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/brainfit-site "$WHEELS"/*.whl > "$OUT/install.txt" 2>&1 \
        || echo "- install: failed (see install.txt)" | tee -a "$SUMMARY"
    export PYTHONPATH=/tmp/brainfit-site:$PWD
else
    export PYTHONPATH=$PWD
fi
python3 - > "$OUT/machine.txt" 2>&1 <<'EOF'
import torch, triton
from brainfit import kernels
print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NO CUDA")
print("lagged_sum on cuda:", kernels.backend("cuda"), "| on cpu:", kernels.backend("cpu"))
EOF
cat "$OUT/machine.txt" >> "$SUMMARY"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1

# the CUDA tests, and the kernels' and engine's equality tests on this machine
step cuda_tests 240 python3 -m pytest -p no:cacheprovider -q -m "cuda or not (slow or long)" \
    tests/test_kernels.py tests/test_engine.py tests/test_network.py
# throughput and peak GPU memory, forward and forward + backward, B up to 1024
step bench_grid 240 python3 scripts/bench.py --device cuda --bench network jansen_rit \
    --batch 1 16 64 256 1024 --regions 80 --repeats 3 --target-seconds 0.3 \
    --markdown "$OUT/bench_grid.md" --json "$OUT/bench_grid.json"
# the default job's epoch on the GPU, and the simulated Hopf fit's
step bench_epochs 150 python3 scripts/bench.py --epochs --epoch-jobs default hopf_sim \
    --epoch-overrides device=cuda --markdown "$OUT/bench_epochs.md" --json "$OUT/bench_epochs.json"
echo "tables: $OUT/bench_grid.md $OUT/bench_epochs.md" >> "$SUMMARY"
cat "$SUMMARY"
