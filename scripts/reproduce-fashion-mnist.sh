#!/usr/bin/env bash
# The small-scale reproduction of docs/REPRODUCTION.md: trains full attention, 4, 16 and 64 mediators (one model
# each) and one shared-weight 4/16/64 network at one training budget, exports their EMA weights, samples every
# configuration (static counts, the step-wise dynamic schedule over a grid of switch ratios, and for each
# dynamic point the fixed schedule that switches at its mean steps, so at equal FLOPs) from several seed sets,
# scores each seed set with `mdit eval` and summarises them as mean and standard deviation with `mdit report`;
# then measures attention redundancy over the sampling steps and runs the switch-ratio search.
#
#   bash scripts/reproduce-fashion-mnist.sh                          # sampling and evaluation from the committed weights
#   PHASES="train export" bash scripts/reproduce-fashion-mnist.sh    # the training phase (resumes the run folders)
#   DATASET=mnist bash scripts/reproduce-fashion-mnist.sh            # the same protocol on MNIST (scripts/reproduce-mnist.sh)
#   KINDS=shared BASELINES="shared-m64 shared-m16" REPORT=results/fashion-mnist/shared-network \
#     PHASES="sample report" bash scripts/reproduce-fashion-mnist.sh   # only the shared network's configurations
# The report phase writes $OUT/summary.md (every configuration against full attention) and, when every kind was
# sampled, $OUT/separate-ladder/ and $OUT/shared-network/ (each ladder against its own static counts).
#
# Every phase can be interrupted and run again: run folders resume, and finished seed sets are kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# The mdit to run: a published copy (M=/path/to/mdit) keeps long runs apart from rebuilds and skips the set-up;
# by default the source tree's, set up and built once here.
if [ -z "${M:-}" ]; then
  "$root/scripts/mdit" --version >/dev/null
  M="dotnet $root/src/MediatorDiT.Cli/bin/Release/net10.0/mdit.dll"
fi

DATASET=${DATASET:-fashion-mnist}
PHASES=${PHASES:-"sample report redundancy thresholds"}
STEPS=${STEPS:-15000}           # optimisation steps of every model (batch 64)
RUNS=${RUNS:-training}          # run folders: $RUNS/$DATASET-{full,m4,m16,m64,ladder}
OUT=${OUT:-results/$DATASET}
MODELS=${MODELS:-$OUT/models}   # the exported EMA weights of step $STEPS (committed)
TRAIN=${TRAIN:-"full m4 m16 m64 shared"}
THREADS=${THREADS:-}            # compute threads of every command (default: all cores)
SEEDS=${SEEDS:-"1 2 3"}         # seed sets per configuration
N=${N:-700}                     # samples per seed set
SAMPLE_STEPS=${SAMPLE_STEPS:-50}
RATIO_GRID=${RATIO_GRID:-"0.7,0.3 1,0.3 0.9,0.6 1,0.7 1,0.9 1,1"}   # points of the authors' grid spread over its FLOPs (5.93-6.96 GFLOPs on the shared ladder); 0.9,0.6 is their default
CONFIGS=${CONFIGS:-}            # default: every configuration below
KINDS=${KINDS:-"full separate shared"}   # the default CONFIGS: full attention, the separate models' and the shared network's
BASELINES=${BASELINES:-}        # report: configurations to take paired differences against (default: full, when sampled)
REPORT=${REPORT:-$OUT}          # report: where summary.md, summary.json and fid-flops.svg of the main report go
threads=(); [ -n "$THREADS" ] && threads=(--threads "$THREADS")
mkdir -p "$OUT/samples"

run_dir() { if [ "$1" = shared ]; then echo "$RUNS/$DATASET-ladder"; else echo "$RUNS/$DATASET-$1"; fi; }

if [[ " $PHASES " == *" train "* ]]; then
  for n in $TRAIN; do
    run=$(run_dir "$n")
    if [ -f "$run/config.json" ]; then args=(--resume "$run"); else args=(--config "configs/$DATASET/$n.json" --out "$run"); fi
    $M train "${args[@]}" --steps "$STEPS" --ckpt-every 500 --no-progress "${threads[@]}"
  done
fi

if [[ " $PHASES " == *" export "* ]]; then
  for n in $TRAIN; do
    ckpt="$(run_dir "$n")/checkpoints/$(printf %07d "$STEPS").safetensors"
    [ -f "$ckpt" ] || { echo "error: $ckpt is missing: train $n to step $STEPS first (PHASES=train)." >&2; exit 1; }
    mkdir -p "$MODELS/$n"
    $M export "$ckpt" --weights ema --out "$MODELS/$n"
  done
fi

ladder() { echo "$MODELS/$1/ema$2.safetensors,$MODELS/$1/ema$3.safetensors,$MODELS/$1/ema$4.safetensors"; }
separate_ladder() { echo "$MODELS/m4/ema.safetensors,$MODELS/m16/ema.safetensors,$MODELS/m64/ema.safetensors"; }
shared_ladder() { ladder shared -m4 -m16 -m64; }

# One seed set of a configuration: samples, run.json and eval.json in $OUT/samples/<config>/seed-<S>; kept when done.
sample_seed_set() { # config, seed, then the sampling arguments
  local name=$1 seed=$2; shift 2
  local dir="$OUT/samples/$name/seed-$seed"
  [ -f "$dir/eval.json" ] && return 0
  $M sample "$@" --num-images "$N" --batch-size 100 --steps "$SAMPLE_STEPS" --seed "$seed" --npz \
    --out "$dir" --no-progress "${threads[@]}" | tail -n 1
  $M eval --samples "$dir/samples.npz" --dataset "$DATASET" --json "$dir/eval.json" --no-floor "${threads[@]}" | tail -n 1
}

sample_config() { # config, then the sampling arguments
  local name=$1; shift
  for seed in $SEEDS; do sample_seed_set "$name" "$seed" "$@"; done
}

# The fixed schedule at a dynamic configuration's mean switch steps (over all its seed sets), as fractions for --switch-at.
matched_fractions() {
  $M report "$OUT/samples" --configs "$1" | awk -F'|' -v steps="$SAMPLE_STEPS" 'NR == 3 {
    n = split($5, s, ","); out = "";
    for (i = 1; i <= n; i++) { v = int(s[i] + 0.5) / steps; out = out (i > 1 ? "," : "") v }
    print out }'
}

all_configs() {
  [[ " $KINDS " == *" full "* ]] && echo full
  for kind in separate shared; do
    [[ " $KINDS " == *" $kind "* ]] || continue
    echo "$kind-m4 $kind-m16 $kind-m64"
    for r in $RATIO_GRID; do echo "$kind-dynamic@${r/,/-} $kind-fixed@${r/,/-}"; done
  done
}
CONFIGS=${CONFIGS:-$(all_configs | tr '\n' ' ')}

if [[ " $PHASES " == *" sample "* ]]; then
  for c in $CONFIGS; do
    echo "== $c"
    case $c in
      full) sample_config "$c" --checkpoint "$MODELS/full/ema.safetensors" ;;
      separate-m*) sample_config "$c" --checkpoint "$MODELS/${c#separate-}/ema.safetensors" ;;
      shared-m*) sample_config "$c" --checkpoint "$MODELS/shared/ema-${c#shared-}.safetensors" ;;
      separate-dynamic@*|shared-dynamic@*)
        kind=${c%%-dynamic@*}; r=${c#*@}
        sample_config "$c" --ladder "$("${kind}_ladder")" --ratios "${r/-/,}" --per-sample ;;
      separate-fixed@*|shared-fixed@*)
        kind=${c%%-fixed@*}; dyn="$kind-dynamic@${c#*@}"
        fractions=$(matched_fractions "$dyn")
        sample_config "$c" --ladder "$("${kind}_ladder")" --switch-at "$fractions" ;;
      *) echo "unknown configuration '$c'" >&2; exit 2 ;;
    esac
  done
  $M eval --dataset "$DATASET" --json "$OUT/floor.json" "${threads[@]}" | tail -n 1
fi

# One report of the configurations $1 (space-separated) into the folder $2: a table of every configuration, paired
# tables against the baselines $3 (claim a: full attention), each dynamic point against its equal-FLOPs fixed schedule
# (claim b), and, for a report of one ladder alone, the ladder's dynamic and fixed points against the straight line
# from its 16- to its 64-mediator model at their FLOPs (claim b against static counts).
report_into() {
  local configs=$1 dir=$2 baselines=$3 kind other
  local pairs=() base=() lines=()
  for kind in separate shared; do
    [[ " $configs " == *" $kind-dynamic@"* ]] && pairs+=(--pair-curves "$kind-dynamic,$kind-fixed")
    other=$([ "$kind" = separate ] && echo shared || echo separate)
    [[ " $configs " == *" $kind-m16 "* && " $configs " == *" $kind-m64 "* && " $configs " != *" $other-"* ]] && lines+=(--line "$kind-m16,$kind-m64")
  done
  for b in $baselines; do base+=(--baseline "$b"); done
  mkdir -p "$dir"
  $M report "$OUT/samples" --configs "$(echo $configs | tr ' ' ',')" "${base[@]}" "${pairs[@]}" "${lines[@]}" --markdown "$dir/summary.md" \
    --json "$dir/summary.json" --plot "$dir/fid-flops.svg" --title "$DATASET: FID against sampling FLOPs"
}

if [[ " $PHASES " == *" report "* ]]; then
  # Paired seed set by seed set: every configuration against full attention (or $BASELINES); then, when every kind
  # was sampled, one report per ladder against its own static counts.
  report_into "$CONFIGS" "$REPORT" "${BASELINES:-$([[ " $CONFIGS " == *" full "* ]] && echo full)}"
  if [ -z "${BASELINES:-}" ] && [[ " $KINDS " == *" separate "* && " $KINDS " == *" shared "* ]]; then
    for kind in separate shared; do
      own=$(for c in $CONFIGS; do if [[ $c == $kind-* ]]; then echo "$c"; fi; done | tr '\n' ' ')
      [ -n "$own" ] && report_into "$own" "$OUT/$([ "$kind" = separate ] && echo separate-ladder || echo shared-network)" "$kind-m64 $kind-m16"
    done
  fi
fi

if [[ " $PHASES " == *" redundancy "* ]]; then
  $M redundancy --checkpoint "$MODELS/full/ema.safetensors" --samples 8 --steps 25 --out "$OUT/redundancy-full" --no-progress "${threads[@]}"
  $M redundancy --checkpoint "$MODELS/m64/ema.safetensors" --samples 8 --steps 25 --out "$OUT/redundancy-m64" --no-progress "${threads[@]}"
  $M redundancy --checkpoint "$MODELS/shared/ema-m64.safetensors" --samples 8 --steps 25 --out "$OUT/redundancy-shared-m64" --no-progress "${threads[@]}"
fi

if [[ " $PHASES " == *" thresholds "* ]]; then
  $M search-thresholds --ladder "$(shared_ladder)" --samples 32 --steps "$SAMPLE_STEPS" --refine 6 --refine-samples 200 \
    --refine-scorer "${REFINE_SCORER:-fid}" --dataset "$DATASET" --out "$OUT/thresholds" --no-progress "${threads[@]}"
fi
