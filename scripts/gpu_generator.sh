#!/usr/bin/env bash
# Train the larger reply generator (configs/gpu.yaml) on one GPU and pack it for the trip back.
#
#   scripts/gpu_generator.sh [train]   # pretrain-lm + conv-fixed-prompt, then pack the tuned generator
#   scripts/gpu_generator.sh lm        # pack only the pre-trained LM (after a train run, same machine)
#
# Run from the repository root with the git-ignored folders .whl/ (wheels of the generator
# path's dependencies a bare torch + transformers install lacks) and .gpu/ (data/: a copy of the
# data folder; runs_gpu/: the tokenizer stage's output for configs/gpu.yaml) next to it.
# Writes into $OUT (at most 8 files): train.log, metrics.json (both stages' done.json, with
# per-epoch history), throughput.json, and the tuned generator (fp16 weights) + tokenizer as
# gen.tar.part-aa, -ab, ... (<= 15 MiB each); `lm` writes lm.tar.part-*. Unpack with
#   cat gen.tar.part-* | tar x -C runs/gpu     (gives conv-fixed-prompt/{generator,tokenizer}/)
#
# Preparing .whl/ and .gpu/ on the development machine (the device has no package index and
# the travelling tree is capped at 64 MiB, so the data goes compressed):
#   .venv/bin/pip download --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
#     --no-deps -d .whl accelerate==1.15.0 omegaconf==2.4.0 rapidfuzz==3.14.6 pyahocorasick==2.3.1 \
#     nltk==3.10.4 joblib cloudpickle defusedxml click psutil tqdm==4.70.1 safetensors==0.8.0 pyyaml==6.0.3 regex
#   python -m train tokenizer --config configs/gpu.yaml      # then:
#   mkdir -p /tmp/gpu && cp -r "$CRS_DATA_DIR" /tmp/gpu/data && cp -r runs/gpu /tmp/gpu/runs_gpu
#   mkdir -p .gpu && tar czf .gpu/bundle.tgz -C /tmp/gpu data runs_gpu   # .gpu/ is unpacked on arrival
# Device command: `bash scripts/gpu_generator.sh` with carry [".whl", ".gpu"], timeout 600 s.
#
# Environment: PY (python command, default python3), SKIP_INSTALL=1 (use PY's packages as
# they are), RUN_DIR (default runs/gpu), CONFIG (default configs/gpu.yaml), BENCH=0 (skip the
# throughput benchmark), GPU_SMOKE=1 (tiny end-to-end run with step caps; CPU allowed).
set -euo pipefail

MODE=${1:-train}
PY=${PY:-python3}
OUT=${OUT:?set OUT to the folder the results go to}
RUN_DIR=${RUN_DIR:-runs/gpu}
CONFIG=${CONFIG:-configs/gpu.yaml}
PART_SIZE=${PART_SIZE:-15M}  # split size (split -b); the device returns files <= 16 MiB
MAX_PARTS=5
mkdir -p "$OUT"
LOG="$OUT/train.log"
if [[ -f .gpu/bundle.tgz && ! -d .gpu/data ]]; then
  tar xzf .gpu/bundle.tgz -C .gpu
fi

OVERRIDES=()
if [[ "${GPU_SMOKE:-0}" == 1 ]]; then
  OVERRIDES=(generator.init=scratch-tiny pretrain_lm.loop.max_steps=3 conv.loop.max_steps=3
             pretrain_lm.max_lines=400 pretrain_lm.eval_blocks=20 conv.eval_turns=50)
fi

log() { echo "[gpu_generator $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }

install_missing() {
  # module:wheel pairs; only what cannot be imported is installed, without touching the rest.
  local pairs=(accelerate:accelerate omegaconf:omegaconf rapidfuzz:rapidfuzz ahocorasick:pyahocorasick
               nltk:nltk joblib:joblib cloudpickle:cloudpickle defusedxml:defusedxml click:click psutil:psutil tqdm:tqdm
               safetensors:safetensors yaml:pyyaml regex:regex)
  local missing=() pair
  for pair in "${pairs[@]}"; do
    "$PY" -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair#*:}")
  done
  if ((${#missing[@]})); then
    log "installing from .whl: ${missing[*]}"
    "$PY" -m pip install -q --no-index --find-links .whl --no-deps "${missing[@]}" 2>&1 | tee -a "$LOG" ||
      "$PY" -m pip install -q --no-index --find-links .whl --no-deps --break-system-packages "${missing[@]}" 2>&1 | tee -a "$LOG"
  else
    log "all generator-path packages already importable"
  fi
}

pack() {  # pack NAME STAGE_SUBDIR...: fp16 copy of the model folder, tokenizer, done.json -> $OUT/NAME.tar.part-*
  local name=$1 model=$2; shift 2
  local stage=${model%%/*} staging
  staging=$(mktemp -d)
  mkdir -p "$staging/$stage"
  "$PY" - "$RUN_DIR/$model" "$staging/$model" <<'EOF'
import sys
from crs.gen.backbone import load_model, save_model
model = load_model(sys.argv[1])  # float32
save_model(model, sys.argv[2], half=True)
print(f"fp16 copy of {sys.argv[1]}: {model.num_parameters() / 1e6:.1f}M parameters")
EOF
  local extra
  for extra in "$@"; do cp -r "$RUN_DIR/$extra" "$staging/$extra"; done
  [[ -f "$RUN_DIR/$stage/done.json" ]] && cp "$RUN_DIR/$stage/done.json" "$staging/$stage/"
  cp "$RUN_DIR/config.yaml" "$staging/config.yaml"
  rm -f "$OUT/$name".tar.part-*
  tar -C "$staging" -cf - . | split -b "$PART_SIZE" -a 2 - "$OUT/$name.tar.part-"
  rm -rf "$staging"
  local parts
  parts=$(ls "$OUT/$name".tar.part-* | wc -l)
  log "$name: $parts part(s); $(du -ch "$OUT/$name".tar.part-* | tail -1 | cut -f1) in all"
  ((parts <= MAX_PARTS)) || { log "ERROR: $parts parts exceed $MAX_PARTS"; exit 1; }
}

export CRS_DATA_DIR=${CRS_DATA_DIR:-.gpu/data} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false

if [[ "$MODE" == lm ]]; then
  pack lm pretrain-lm/lm
  ls -l "$OUT"
  exit 0
fi
[[ "$MODE" == train ]] || { echo "usage: $0 [train|lm]" >&2; exit 2; }

[[ "${SKIP_INSTALL:-0}" == 1 ]] || install_missing
{ nvidia-smi -L || echo "no nvidia-smi"; } 2>&1 | tee -a "$LOG"
"$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import sys, torch, transformers, accelerate
cuda = torch.cuda.is_available()
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (cuda {torch.version.cuda}), "
      f"transformers {transformers.__version__}, accelerate {accelerate.__version__}; "
      f"cuda available {cuda}{', bf16 ' + str(torch.cuda.is_bf16_supported()) if cuda else ''}")
EOF
if [[ "${GPU_SMOKE:-0}" != 1 ]]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" ||
    { log "ERROR: no CUDA device (GPU_SMOKE=1 runs on a CPU)"; exit 1; }
fi

mkdir -p "$RUN_DIR"
if [[ ! -f "$RUN_DIR/tokenizer/done.json" ]]; then
  cp -r .gpu/runs_gpu/. "$RUN_DIR/"
  log "tokenizer stage output copied from .gpu/runs_gpu to $RUN_DIR"
fi

if [[ "${BENCH:-1}" == 1 ]]; then
  bench=(--steps 3 --batch-size 8)
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" &&
    bench=(--steps 10 --batch-size 64 --sizes scratch-small scratch-base)
  "$PY" -m benchmarks.train_throughput "${bench[@]}" --out "$OUT/throughput.json" 2>&1 | tee -a "$LOG" ||
    log "benchmark failed (ignored)"
fi

for stage in pretrain-lm conv-fixed-prompt; do
  log "stage $stage ${OVERRIDES[*]:-}"
  { time "$PY" -m train "$stage" --config "$CONFIG" --output-dir "$RUN_DIR" --quiet ${OVERRIDES[@]+"${OVERRIDES[@]}"} ; } 2>&1 | tee -a "$LOG"
done

"$PY" - "$RUN_DIR" "$OUT/metrics.json" <<'EOF'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
report = {stage: json.loads((run / stage / "done.json").read_text()) for stage in ("pretrain-lm", "conv-fixed-prompt")}
Path(sys.argv[2]).write_text(json.dumps(report, indent=2) + "\n")
for stage, done in report.items():
    rows = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()} for h in done["metrics"]["history"]]
    print(stage, f"{done['seconds']} s", *rows, sep="\n  ")
EOF

pack gen conv-fixed-prompt/generator conv-fixed-prompt/tokenizer
ls -l "$OUT" | tee -a "$LOG"
