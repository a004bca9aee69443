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
"$root/scripts/mdit" --version >/dev/null   # set-up and build once
M="dotnet $root/src/MediatorDiT.Cli/bin/Release/net10.0/mdit.dll"
PHASES=${PHASES:-"train sample redundancy thresholds"}
STEPS=${STEPS:-3000}            # optimisation steps of every model (batch 64)
N=${N:-500}                     # samples per configuration for the metrics
SAMPLE_STEPS=${SAMPLE_STEPS:-50}
RATIOS=${RATIOS:-0.9,0.6}       # the authors' default switch ratios
SEARCHED_RATIOS=${SEARCHED_RATIOS:-0.7,0.3}   # the schedule the threshold search picked on the 2,000-step ladder (docs/REPRODUCTION.md)
FIXED_SWITCH=${FIXED_SWITCH:-0.24,0.72}       # a fixed schedule at the dynamic one's mean switch steps (12 and 36 of 50): equal FLOPs
RUNS=${RUNS:-runs/repro}
OUT=${OUT:-results/fashion-mnist}
WEIGHTS=${WEIGHTS:-model}         # ema: the EMA exports; model: the raw weights of the latest checkpoint (mdit export)
mkdir -p "$OUT/eval" "$OUT/samples"

weights() { # run name, mediator count (shared run) -> weights file
  local run="$RUNS/$1" suffix=""
  [ -n "${2:-}" ] && suffix="-m$2"
  if [ "$WEIGHTS" = model ] && [ ! -f "$run/model$suffix.safetensors" ]; then $M export "$run" --weights model >/dev/null; fi
  echo "$run/$WEIGHTS$suffix.safetensors"
}

sample_and_score() { # name, then the sampling arguments
  local name=$1; shift
  $M sample "$@" --num-images "$N" --batch-size 100 --steps "$SAMPLE_STEPS" --seed 1 --npz \
    --out "$OUT/samples/$name" --no-progress 2>&1 | tail -n 2
  $M eval --samples "$OUT/samples/$name/samples.npz" --json "$OUT/eval/$name.json" --no-floor | tail -n 1
  rm -f "$OUT/samples/$name"/*.png.tmp
}

if [[ " $PHASES " == *" train "* ]]; then
  for n in full m4 m16 m64 shared; do
    if [ -f "$RUNS/$n/config.json" ]; then resume=(--resume "$RUNS/$n"); else resume=(--config "configs/fashion-mnist/$n.json" --out "$RUNS/$n"); fi
    $M train "${resume[@]}" --steps "$STEPS" --no-progress
  done
fi

CONFIGS=${CONFIGS:-"floor full separate-m4 separate-m16 separate-m64 shared-m4 shared-m16 shared-m64 separate-dynamic shared-dynamic shared-dynamic-searched separate-fixed"}
if [[ " $PHASES " == *" sample "* ]]; then
  for c in $CONFIGS; do
    case $c in
      floor) $M eval --json "$OUT/eval/floor.json" | tail -n 1 ;;
      full) sample_and_score full --checkpoint "$(weights full)" ;;
      separate-m*) sample_and_score "$c" --checkpoint "$(weights "${c#separate-}")" ;;
      shared-m*) sample_and_score "$c" --checkpoint "$(weights shared "${c#shared-m}")" ;;
      separate-dynamic) sample_and_score "$c" --ladder "$(weights m4),$(weights m16),$(weights m64)" --ratios "$RATIOS" --per-sample ;;
      shared-dynamic) sample_and_score "$c" --ladder "$(weights shared 4),$(weights shared 16),$(weights shared 64)" --ratios "$RATIOS" --per-sample ;;
      shared-dynamic-searched) sample_and_score "$c" --ladder "$(weights shared 4),$(weights shared 16),$(weights shared 64)" --ratios "$SEARCHED_RATIOS" --per-sample ;;
      separate-fixed) sample_and_score "$c" --ladder "$(weights m4),$(weights m16),$(weights m64)" --switch-at "$FIXED_SWITCH" ;;
      *) echo "unknown configuration '$c'" >&2; exit 2 ;;
    esac
  done
fi

if [[ " $PHASES " == *" redundancy "* ]]; then
  $M redundancy --checkpoint "$(weights full)" --samples 8 --steps 25 --out "$OUT/redundancy-full" --no-progress
  $M redundancy --checkpoint "$(weights m64)" --samples 8 --steps 25 --out "$OUT/redundancy-m64" --no-progress
fi

if [[ " $PHASES " == *" thresholds "* ]]; then
  $M search-thresholds --ladder "$(weights shared 4),$(weights shared 16),$(weights shared 64)" --samples 32 \
    --steps "$SAMPLE_STEPS" --refine 6 --refine-samples 200 --refine-scorer "${REFINE_SCORER:-fid}" --out "$OUT/thresholds" --no-progress
fi
