#!/usr/bin/env bash
# What a training run folder sends back from a GPU machine whose returned files are few and small:
#   build/pack_run.sh RUN DEST
# DEST/run.tgz holds every manifest, loss log, run log, report and picture of RUN (no checkpoints, no data);
# DEST/teacher.safetensors and DEST/student-STAGE.safetensors are the weights (fp16) of each stage that wrote them.
set -uo pipefail
run=${1:?usage: build/pack_run.sh RUN DEST}; dest=${2:?usage: build/pack_run.sh RUN DEST}
mkdir -p "$dest"
(cd "$run" && find . -path ./data -prune -o -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.log' \
  -o -name '*.console' -o -name '*.md' -o -name '*.png' \) -print | tar czf "$dest/run.tgz" -T -)
[ -f "$run/teacher/teacher.safetensors" ] && cp "$run/teacher/teacher.safetensors" "$dest/"
for stage in ode dmd dmd-long; do
  [ -f "$run/$stage/student.safetensors" ] && cp "$run/$stage/student.safetensors" "$dest/student-$stage.safetensors"
done
ls -l "$dest"
