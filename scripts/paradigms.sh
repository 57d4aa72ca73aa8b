#!/usr/bin/env bash
# The paradigm table (docs/results/paradigms/): trains every row of configs/paradigms/ (each one
# `python -m train conv-prompt --config configs/paradigms/<row>.yaml`; finished phases are skipped
# on a rerun), then evaluates their checkpoints with the harness, which writes the table
# ("Paradigms" in report.md, "paradigms" in metrics.json). The rows start from the bundled
# checkpoint's generator and use its recommender; kg-prefix-on-lm starts from runs/default's
# pre-trained LM (python -m train all --config configs/default.yaml).
# EVAL_ARGS: extra harness arguments (default: norepeat decoding without exemplars, as the bundled
# model is served, on the first 150 test dialogues).
# PROMPT_PTM: the kg variant whose phase 2 is the prompt+PTM row (the better injection on validation).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROWS=${ROWS-"kg-prefix kg-embeds peft-prompt peft-prefix lora fixed-prompt tuning-free kg-prefix-on-lm"}
for row in $ROWS; do
  echo "== $row"
  $PY -m train conv-prompt --quiet --config "configs/paradigms/$row.yaml"
done
if [ "${TRAIN_ONLY:-0}" = 1 ]; then exit 0; fi
R=runs/paradigms/conv-prompt
L=runs/default/conv-prompt/kg-prefix
MODELS="tuning-free=runs/paradigms/tuning-free/conv-prompt/none/phase1/checkpoint"
MODELS+=",fixed-prompt-ptm=checkpoints/default"
MODELS+=",fixed-prompt-ptm-500-more=$R/none/phase2/checkpoint"
MODELS+=",peft-prompt=$R/peft-prompt/phase1/checkpoint"
MODELS+=",peft-prefix=$R/peft-prefix/phase1/checkpoint"
MODELS+=",kg-prompt-embeds=$R/kg-embeds/phase1/checkpoint"
MODELS+=",kg-prompt-prefix=$R/kg-prefix/phase1/checkpoint"
MODELS+=",prompt+ptm=$R/${PROMPT_PTM:-kg-embeds}/phase2/checkpoint"
MODELS+=",lora=$R/lora/phase1/checkpoint"
MODELS+=",kg-prefix-on-lm=$L/phase1/checkpoint,prompt+ptm-on-lm=$L/phase2/checkpoint${EXTRA:-}"
$PY -m crs.evaluate --split test --tasks rec,conv --out "${OUT:-docs/results/paradigms}" ${EVAL_ARGS:---decoding norepeat --exemplars 0 --limit 150} \
  --model "$MODELS"
