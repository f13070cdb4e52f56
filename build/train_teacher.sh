#!/usr/bin/env bash
# One long teacher run, as one script: prepare the recipe's data, train every phase, leave weights and logs in OUT.
#   build/train_teacher.sh OUT [RECIPE] [DEVICE] [MINUTES]
# RECIPE defaults to build/recipes/tiny-gpu.toml, DEVICE to cuda when torch sees one (else cpu), MINUTES (the
# training's wall-time budget; it checkpoints and stops, and a rerun with the same OUT goes on) to none.
# OUT gets data/ (shards), teacher/ (checkpoint.pt, loss.jsonl, teacher.safetensors, manifest.json), run.log.
set -euo pipefail
out=${1:?usage: build/train_teacher.sh OUT [RECIPE] [DEVICE] [MINUTES]}
recipe=${2:-build/recipes/tiny-gpu.toml}
device=${3:-$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}
minutes=${4:-}
cd "$(dirname "$0")/.."
mkdir -p "$out"
python -c "import numpy, torch, safetensors, tqdm" 2>/dev/null \
  || pip install -q numpy safetensors tqdm \
  || { echo "missing packages (numpy safetensors tqdm) and pip cannot install them" >&2; exit 2; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
workers=$(nproc)
{
  echo "== $(date -u +%FT%TZ) data ($recipe, $workers workers, encode on $device)"
  python -m shotstream.cli train data --recipe "$recipe" --data "$out/data" --workers "$workers" --device "$device"
  echo "== $(date -u +%FT%TZ) teacher ($device)"
  python -m shotstream.cli train teacher --recipe "$recipe" --data "$out/data" --out "$out/teacher" --device "$device" \
    ${minutes:+--minutes "$minutes"}
  echo "== $(date -u +%FT%TZ) done"
} 2>&1 | tee -a "$out/run.log"
