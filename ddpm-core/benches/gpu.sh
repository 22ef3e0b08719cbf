#!/usr/bin/env bash
# The GPU check, prepared to run in one go on a machine with a GPU (and a Vulkan, Metal or DX12
# driver): builds with the `wgpu` feature, runs the wgpu tests (the backend agrees with flex
# and learns), then the throughput benchmark on wgpu and on flex, and prints the two tables.
#
#   bash ddpm-core/benches/gpu.sh            # from the workspace root
#   QUICK= bash ddpm-core/benches/gpu.sh     # full repeats instead of --quick
#
# It needs cargo and the crates (run `cargo fetch` once where crates.io is reachable, or copy
# ~/.cargo/registry). The tests and the benchmark print the adapter wgpu picked: where that
# says llvmpipe (Cpu), the figures are Mesa's software driver's, not a GPU's. Exits non-zero
# when a test fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
QUICK="${QUICK---quick}"
LOG="${TMPDIR:-/tmp}/ddpm-gpu-check.log"
OFFLINE=""
cargo fetch --quiet 2>/dev/null || OFFLINE="--offline"

echo "== machine"
nproc
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || true)

echo "== build (release, features wgpu)"
time cargo build $OFFLINE --release --features wgpu --tests --benches

echo "== wgpu tests: agreement with flex, and learning (full log: $LOG)"
set +e
cargo test $OFFLINE --release --features wgpu --test wgpu -- --nocapture --test-threads 1 >"$LOG" 2>&1
status=$?
set -e
grep -E "^(test |adapter|MLP|U-Net|DDPM|wgpu,|test result)" "$LOG" || true
if [ "$status" -ne 0 ]; then
  echo "wgpu tests FAILED (exit $status); see $LOG" >&2
  exit "$status"
fi

echo "== throughput: wgpu, then flex"
cargo bench $OFFLINE --features wgpu --bench throughput -- $QUICK --backend wgpu --backend flex 2>&1 \
  | grep -vE "^\s+(Running|Finished|Compiling)"
