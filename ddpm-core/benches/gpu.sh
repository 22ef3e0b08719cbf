#!/usr/bin/env bash
# The GPU check, prepared to run in one go on a machine with a GPU (and a Vulkan, Metal or DX12
# driver): builds with the `wgpu` feature, runs the wgpu tests (the backend agrees with flex
# and learns), then the throughput benchmark on wgpu and on flex, and prints the two tables.
#
#   bash ddpm-core/benches/gpu.sh            # from the workspace root
#   QUICK= bash ddpm-core/benches/gpu.sh     # full repeats instead of --quick
#
# It needs cargo and the crates (run `cargo fetch` once where crates.io is reachable, or
# copy ~/.cargo/registry). It prints which adapter wgpu picked: on a machine where that says
# llvmpipe, the figures are the software driver's, not a GPU's.
set -euo pipefail
cd "$(dirname "$0")/../.."
QUICK="${QUICK---quick}"
OFFLINE=""
cargo fetch --quiet 2>/dev/null || OFFLINE="--offline"

echo "== machine"
nproc; (nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || true)
(command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName" || true)

echo "== build (release, features wgpu)"
time cargo build $OFFLINE --release --features wgpu --tests --benches

echo "== wgpu tests: agreement with flex, and learning"
time cargo test $OFFLINE --release --features wgpu --test wgpu -- --nocapture --test-threads 1 2>&1 \
  | grep -E "^(test |MLP|U-Net|DDPM|wgpu,|test result)" || true

echo "== throughput: wgpu, then flex"
cargo bench $OFFLINE --features wgpu --bench throughput -- $QUICK --backend wgpu --backend flex 2>&1 \
  | grep -vE "^(\s+Running|\s+Finished|\s+Compiling)"
