#!/usr/bin/env bash
# The official preset on a GPU, in one call of at most 8 minutes:
#   1. CPU-vs-CUDA parity of the chunk step (and of a 2-chunk shot) at reduced layers (build/gpu_parity.py);
#   2. `shotstream bench --preset shotstream-1.3b --random-weights --device cuda --json` at full geometry.
# Writes OUTDIR/parity.json, OUTDIR/bench.json, OUTDIR/gpu_check.json (both, with the machine) and
# OUTDIR/gpu_check.log. Needs python with torch (a CUDA build for --device cuda); installs what else the
# runtime needs with pip, or stops and names the package it could not get.
#
#   build/gpu_check.sh OUTDIR                 # on a CUDA machine
#   build/gpu_check.sh OUTDIR --cpu-reduced   # the same steps on the CPU at reduced size (the tests run this)
#   build/gpu_check.sh OUTDIR --wheels DIR    # a machine without a package index: install from wheels brought
#                                             # along (on a connected machine: pip download -d DIR diffusers
#                                             # transformers tokenizers safetensors tqdm)
#
# Exit status: 0 all ran and parity passed; 1 parity failed; 2 cannot run here (no GPU, a package missing);
# 124 a step ran past its time.
set -uo pipefail

usage() { echo "usage: $0 OUTDIR [--cpu-reduced] [--no-install] [--wheels DIR]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
DEVICE=cuda REDUCED=0 INSTALL=1 WHEELS=
while [ $# -gt 0 ]; do
  case $1 in
    --cpu-reduced) DEVICE=cpu REDUCED=1 ;;
    --no-install) INSTALL=0 ;;
    --wheels) [ $# -ge 2 ] || usage; WHEELS=$(cd "$2" && pwd) || exit 2; shift ;;
    *) usage ;;
  esac
  shift
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu_check.log
: > "$LOG"
BUDGET=${GPU_CHECK_SECONDS:-480}  # the whole check; each step gets what is left
START=$(date +%s)
say() { echo "gpu_check: $*" | tee -a "$LOG" >&2; }
left() { local s=$(( BUDGET - ($(date +%s) - START) )); echo $(( s > 1 ? s : 1 )); }  # timeout 0 = no limit
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# -- what this machine has --------------------------------------------------------------------------
if ! "$PY" -c "import torch" >>"$LOG" 2>&1; then
  say "cannot run: $PY has no torch (install a CUDA build of torch first: https://pytorch.org)"; exit 2
fi
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >>"$LOG" 2>&1; then
  say "cannot run: torch sees no CUDA GPU ($("$PY" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)'));" \
      "use --cpu-reduced to run the steps on the CPU"
  exit 2
fi
# module -> pip requirement (the runtime's core plus the `official` extra; grpc, onnx and pygame are not needed)
NEEDED="numpy:numpy safetensors:safetensors==0.8.0 tqdm:tqdm diffusers:diffusers>=0.35 transformers:transformers>=4.51 tokenizers:tokenizers>=0.21"
# one process tries every import (a process each cost seconds: diffusers alone imports in about 5 s)
MISSING=$("$PY" - $NEEDED 2>>"$LOG" <<'EOF'
import importlib, sys
for pair in sys.argv[1:]:
    module, requirement = pair.split(":", 1)
    try:
        importlib.import_module(module)
    except Exception as error:  # what a missing or broken package raises, logged beside its name
        print(f"cannot import {module}: {error!r}", file=sys.stderr)
        print(requirement)
EOF
)
for requirement in $MISSING; do
  if [ "$INSTALL" = 0 ]; then say "cannot run: python package '$requirement' is missing (--no-install)"; exit 2; fi
  say "installing $requirement${WHEELS:+ from $WHEELS}"
  if ! timeout "$(left)" "$PY" -m pip install --quiet ${WHEELS:+--no-index --find-links "$WHEELS"} "$requirement" >>"$LOG" 2>&1; then
    say "cannot run: pip could not install '$requirement' (see $LOG; without a package index, give --wheels DIR)"; exit 2
  fi
done
"$PY" - >>"$LOG" 2>&1 <<'EOF'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(), round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1), "GiB")
EOF

# -- 1. parity ----------------------------------------------------------------------------------------
if [ "$REDUCED" = 1 ]; then
  PARITY=(--device cpu --layers 1 --size 32x48 --vae-channels 8 --text-len 32)
  BENCH=(--device cpu --layers 1 --size 32x48 --vae-channels 8 --text-len 32 --shots 2 --chunks 2 --no-reference)
else
  PARITY=(--device cuda --layers 2)
  BENCH=(--device cuda --shots 3)
fi
say "parity: ${PARITY[*]}"
timeout "$(left)" "$PY" build/gpu_parity.py "${PARITY[@]}" --json "$OUT/parity.json" >>"$LOG" 2>&1
parity=$?
[ $parity = 124 ] && { say "parity ran past the time budget"; exit 124; }
[ -s "$OUT/parity.json" ] || { say "parity did not run (see $LOG)"; exit 2; }

# -- 2. bench -----------------------------------------------------------------------------------------
say "bench: ${BENCH[*]}"
timeout "$(left)" "$PY" -m shotstream.cli bench --preset shotstream-1.3b --backend torch --random-weights \
  "${BENCH[@]}" --json > "$OUT/bench.json" 2>>"$LOG"
bench=$?
[ $bench = 124 ] && { say "bench ran past the time budget"; exit 124; }
[ $bench = 0 ] && [ -s "$OUT/bench.json" ] || { say "bench failed (see $LOG)"; exit 2; }

"$PY" - "$OUT" "$(( $(date +%s) - START ))" 2>&1 <<'EOF' | tee -a "$LOG" >&2
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = {"parity": json.loads((out / "parity.json").read_text()), "bench": json.loads((out / "bench.json").read_text()),
           "seconds": int(sys.argv[2])}
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1) + "\n")
b = summary["bench"]["rows"][0]
print(f"gpu_check: {b['device']}: {b['fps']} fps with VAE decode, {b['dit_fps']} DiT alone, first frame "
      f"{b['first_frame_ms_p50']} ms, chunk p50/p99 {b['chunk_ms_p50']}/{b['chunk_ms_p99']} ms, "
      f"parity {'ok' if summary['parity']['ok'] else 'FAILED'}")
EOF
[ $parity = 0 ] || { say "parity FAILED (see $OUT/parity.json)"; exit 1; }
exit 0
