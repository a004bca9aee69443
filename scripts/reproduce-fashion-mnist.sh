#!/usr/bin/env bash
# The small-scale reproduction of docs/REPRODUCTION.md on Fashion-MNIST: trains full attention, 4, 16 and 64
# mediators and one shared-weight 4/16/64 network at one training budget, samples each (static counts and the
# step-wise dynamic ladders) from the same seeds, scores them with `mdit eval`, measures attention
# redundancy over the sampling steps and runs the switch-ratio search on the shared ladder.
#   PHASES="train sample redundancy thresholds" STEPS=3000 N=500 bash scripts/reproduce-fashion-mnist.sh
# Every run folder is resumable: an interrupted phase continues where it stopped when run again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
M="$root/scripts/mdit"
PHASES=${PHASES:-"train sample redundancy thresholds"}
STEPS=${STEPS:-3000}            # optimisation steps of every model (batch 64)
N=${N:-500}                     # samples per configuration for the metrics
SAMPLE_STEPS=${SAMPLE_STEPS:-50}
RATIOS=${RATIOS:-0.9,0.6}       # the authors' default switch ratios
RUNS=${RUNS:-runs/repro}
OUT=${OUT:-results/fashion-mnist}
WEIGHTS=${WEIGHTS:-ema}         # ema: the EMA exports; model: the raw weights of the latest checkpoint (mdit export)
mkdir -p "$OUT/eval" "$OUT/samples"

weights() { # run name, mediator count (shared run) -> weights file
  local run="$RUNS/$1" suffix=""
  [ -n "${2:-}" ] && suffix="-m$2"
  if [ "$WEIGHTS" = model ] && [ ! -f "$run/model$suffix.safetensors" ]; then "$M" export "$run" --weights model >/dev/null; fi
  echo "$run/$WEIGHTS$suffix.safetensors"
}

sample_and_score() { # name, then the sampling arguments
  local name=$1; shift
  "$M" sample "$@" --num-images "$N" --batch-size 100 --steps "$SAMPLE_STEPS" --seed 1 --npz \
    --out "$OUT/samples/$name" --no-progress 2>&1 | tail -n 2
  "$M" eval --samples "$OUT/samples/$name/samples.npz" --json "$OUT/eval/$name.json" --no-floor | tail -n 1
  rm -f "$OUT/samples/$name"/*.png.tmp
}

if [[ " $PHASES " == *" train "* ]]; then
  for n in full m4 m16 m64 shared; do
    if [ -f "$RUNS/$n/config.json" ]; then resume=(--resume "$RUNS/$n"); else resume=(--config "configs/fashion-mnist/$n.json" --out "$RUNS/$n"); fi
    "$M" train "${resume[@]}" --steps "$STEPS" --no-progress
  done
fi

if [[ " $PHASES " == *" sample "* ]]; then
  "$M" eval --json "$OUT/eval/floor.json" | tail -n 1
  sample_and_score full --checkpoint "$(weights full)"
  for m in 4 16 64; do
    sample_and_score "separate-m$m" --checkpoint "$(weights m$m)"
    sample_and_score "shared-m$m" --checkpoint "$(weights shared $m)"
  done
  sample_and_score separate-dynamic --ladder "$(weights m4),$(weights m16),$(weights m64)" --ratios "$RATIOS" --per-sample
  sample_and_score shared-dynamic --ladder "$(weights shared 4),$(weights shared 16),$(weights shared 64)" --ratios "$RATIOS" --per-sample
fi

if [[ " $PHASES " == *" redundancy "* ]]; then
  "$M" redundancy --checkpoint "$(weights full)" --samples 16 --steps 25 --out "$OUT/redundancy-full" --no-progress
  "$M" redundancy --checkpoint "$(weights m64)" --samples 16 --steps 25 --out "$OUT/redundancy-m64" --no-progress
fi

if [[ " $PHASES " == *" thresholds "* ]]; then
  "$M" search-thresholds --ladder "$(weights shared 4),$(weights shared 16),$(weights shared 64)" --samples 32 \
    --steps "$SAMPLE_STEPS" --refine 6 --refine-samples 300 --refine-scorer "${REFINE_SCORER:-fid}" --out "$OUT/thresholds" --no-progress
fi
