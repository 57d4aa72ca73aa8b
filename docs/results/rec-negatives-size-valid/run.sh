#!/bin/bash
# Recommender variants on the worker carve (test-like), learned network alone.
cd "$(dirname "$0")/../../.."  # the repository root; CRS_DATA_DIR names the shared data, as for the tests
export HF_HUB_OFFLINE=1
# runs/aug/pretrain-kg: `python -m train pretrain-kg --config configs/default.yaml output_dir=runs/aug` (the recipe's R-GCN);
# the baseline is runs/wkaug of ../seeker-targets-valid/ (the same rec command without a variant's key).
PY=.venv/bin/python
COMMON="--config configs/default.yaml data.valid_by=worker rec.neighbours=false rec.repeat_gate=false rec.seeker_targets=true cache_dir=runs/cache"
for v in neg-ol:other-labels neg-olm:other-labels+mentioned; do
  name=${v%%:*}; neg=${v#*:}
  mkdir -p runs/$name; ln -sfn ../aug/pretrain-kg runs/$name/pretrain-kg
  $PY -m train rec $COMMON output_dir=runs/$name rec.negatives=$neg > runs/$name.log 2>&1
  echo "$name done $(date)"
done
for v in d256:rgcn.dim=256 l2:rgcn.num_layers=2; do
  name=${v%%:*}; opt=${v#*:}
  $PY -m train pretrain-kg --config configs/default.yaml output_dir=runs/$name $opt cache_dir=runs/cache > runs/$name-kg.log 2>&1
  $PY -m train rec $COMMON output_dir=runs/$name $opt > runs/$name.log 2>&1
  echo "$name done $(date)"
done
