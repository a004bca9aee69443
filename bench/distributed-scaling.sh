#!/usr/bin/env bash
# Data-parallel scaling of `mdit train` on one machine: one process against `mpiexec -n 2`, one thread per
# rank, the Fashion-MNIST default recipe (default network: hidden 192, depth 6, 16 mediators, 32x32, batch 64,
# grad_shards 8). Also one process with grad_shards 1 (one forward and backward per batch, as before parts
# existed). Prints images/s measured between step 5 and the last step (JIT and data loading excluded),
# the efficiency of 2 ranks against 1, and rank 0's gradient exchange time and bytes per step.
# Usage: bench/distributed-scaling.sh [STEPS (default 25)]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
steps=${1:-25}
bash "$root/scripts/setup.sh"
dotnet build "$root/src/MediatorDiT.Cli" -c Release --nologo -v quiet >/dev/null
mdit="$root/src/MediatorDiT.Cli/bin/Release/net10.0/mdit.dll"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/recipe.json" <<JSON
{ "dataset": "fashion-mnist", "batch_size": 64, "steps": $steps, "ckpt_every": 100000, "log_every": 5, "seed": 0 }
JSON

# images/s between step 5 and the last logged step, from metrics.jsonl (images_per_sec there is cumulative).
rate() {
  python3 - "$1" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
first = next(l for l in lines if l["step"] == 5)
last = lines[-1]
t = lambda l: l["step"] * 64 / l["images_per_sec"]
print(f'{(last["step"] - first["step"]) * 64 / (t(last) - t(first)):.2f}')
PY
}

run() { # name, launcher words...
  local name=$1; shift
  "$@" dotnet "$mdit" train --config "$work/recipe.json" --out "$work/$name" --threads 1 --no-progress ${EXTRA:-} > "$work/$name.log" 2>&1
  echo "$(rate "$work/$name/metrics.jsonl")"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
one_legacy=$(EXTRA="--grad-shards 1" run one-legacy env)
one=$(run one env)
two=$(run two mpiexec -n 2)
exchange=$(grep -o 'gradient exchange.*' "$work/two.log" || echo "gradient exchange: not reported")
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$one_legacy" "$one" "$two" "$exchange" <<'PY'
import sys
legacy, one, two, exchange = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"| 1 process, grad_shards 1 | {legacy:.2f} img/s |")
print(f"| 1 process, grad_shards 8 | {one:.2f} img/s |")
print(f"| mpiexec -n 2, grad_shards 8 | {two:.2f} img/s | speed-up {two / one:.2f}x, efficiency {100 * two / one / 2:.0f}% |")
print(exchange)
PY
