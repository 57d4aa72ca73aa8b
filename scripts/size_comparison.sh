#!/usr/bin/env bash
# Generator size at an equal wall-clock budget (docs/results/size-valid/): 4x256 (scratch-small, the
# default) and 8x512 (scratch-base) get the same minutes of training steps in each generator stage
# (loop.max_minutes; validation passes not counted), everything else as configs/default.yaml
# (8x512 pre-trains at 7e-4, the rate configs/gpu.yaml uses for that size without warm-up).
# Each run then serves through a copy of the bundled checkpoint's recommender
# (train package, no exemplar at inference, no goal classifier) and is scored on the first 120
# validation dialogues by the harness.
#   scripts/size_comparison.sh [PRETRAIN_MINUTES] [CONV_MINUTES]   (default 8 and 12)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PRE=${1:-8}
CONV=${2:-12}
for size in 4x256 8x512; do
  case $size in
    4x256) extra=(generator.init=scratch-small) ;;
    8x512) extra=(generator.init=scratch-base pretrain_lm.loop.lr=7.0e-4) ;;
  esac
  out=runs/sizes/$size
  common=(--config configs/default.yaml --output-dir "$out" --quiet "${extra[@]}"
          pretrain_lm.loop.epochs=3 "pretrain_lm.loop.max_minutes=$PRE" conv.loop.epochs=3 "conv.loop.max_minutes=$CONV")
  for stage in tokenizer pretrain-lm conv-fixed-prompt; do
    [ -f "$out/$stage/done.json" ] || "$PY" -m train "$stage" "${common[@]}"
  done
  rm -rf "$out/checkpoint" && cp -r checkpoints/default "$out/checkpoint"
  "$PY" -m train package "${common[@]}" conv.exemplars=0 conv.goal_head_dialogues=0
done
"$PY" -m crs.evaluate --model 4x256=runs/sizes/4x256/checkpoint,8x512=runs/sizes/8x512/checkpoint \
  --split valid --limit 120 --tasks conv --precision auto --quiet --out docs/results/size-valid
