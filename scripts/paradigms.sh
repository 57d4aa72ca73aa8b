#!/usr/bin/env bash
# The paradigm table (docs/results/paradigms/): trains every row of configs/paradigms/ (each one
# `python -m train conv-prompt --config configs/paradigms/<row>.yaml`; finished phases are skipped
# on a rerun), then evaluates their checkpoints with the harness. Needs runs/default's tokenizer and
# pretrain-lm outputs (python -m train all --config configs/default.yaml) and checkpoints/default.
# EVAL_ARGS: extra harness arguments (e.g. "--limit 200" for the first 200 test dialogues).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROWS=${ROWS:-"kg-prefix kg-embeds peft-prompt peft-prefix lora fixed-prompt"}
for row in $ROWS; do
  echo "== $row"
  $PY -m train conv-prompt --quiet --config "configs/paradigms/$row.yaml"
done
if [ "${TRAIN_ONLY:-0}" = 1 ]; then exit 0; fi
R=runs/default/conv-prompt
$PY -m crs.evaluate --split test --tasks rec,conv --out "${OUT:-docs/results/paradigms}" ${EVAL_ARGS:-} \
  --model "tuning-free=$R/none/phase1/checkpoint,fixed-prompt-ptm=$R/none/phase2/checkpoint,peft-prompt=$R/peft-prompt/phase1/checkpoint,peft-prefix=$R/peft-prefix/phase1/checkpoint,kg-prompt-embeds=$R/kg-embeds/phase1/checkpoint,kg-prompt=$R/kg-prefix/phase1/checkpoint,prompt+ptm=$R/kg-prefix/phase2/checkpoint,lora=$R/lora/phase1/checkpoint"
