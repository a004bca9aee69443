#!/usr/bin/env bash
# The reproduction protocol of docs/REPRODUCTION.md on MNIST, at a smaller training budget (12,000 steps of batch 64,
# about 85 passes over its 9,003 training digits; 4,000 gave strokes, not digits): the same five models, configurations, seed sets and phases as
# scripts/reproduce-fashion-mnist.sh, with run folders training/mnist-* and results in results/mnist/.
#   bash scripts/reproduce-mnist.sh                          # sampling and evaluation from the committed weights
#   PHASES="train export" bash scripts/reproduce-mnist.sh    # the training phase
set -euo pipefail
DATASET=mnist STEPS=${STEPS:-12000} PHASES=${PHASES:-"sample report redundancy"} \
  exec bash "$(cd "$(dirname "$0")" && pwd)/reproduce-fashion-mnist.sh" "$@"
