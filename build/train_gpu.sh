#!/usr/bin/env bash
# Every training stage of the tiny model in one call on one machine, inside a wall-time budget:
# data -> teacher -> student ODE initialisation -> student DMD (intra-shot), then inter-shot DMD if time is left.
#   build/train_gpu.sh OUT [RECIPE] [SECONDS]
# RECIPE defaults to build/recipes/tiny-p1-gpu.toml, the grid the runtime ships (its phases and stages carry their
# own minutes; build/recipes/tiny-gpu.toml is the patch-2 grid's, tiny-p2), SECONDS (the
# whole budget, default 1800) bounds the DMD stages: each gets what is left, less a margin for writing results.
# OUT gets data/, teacher/, ode/, dmd/, dmd-long/ (each: weights, manifest.json, loss.jsonl), run.log and
# resources.log (memory, load and the GPU every 10 s).
# GPU_CHECK_SECONDS=N (default 0: none) also runs build/gpu_check.sh OUT/gpu_check within N seconds beside the
# data stage (which renders on the CPU cores): the official preset's figures for the price of the overlap
# (--cpu-reduced on a machine without CUDA; GPU_CHECK_ARGS adds arguments such as --wheels DIR).
# PRESET=NAME trains the teacher and the student's stages in that preset instead of the recipe's (`train --preset`).
# TEACHER_INIT=WEIGHTS starts the teacher from those DiT weights (`train teacher --init`; its manifest names them),
# e.g. the image phase already trained on the CPU, instead of from its seeded initialisation.
# DATA_SECONDS=N (default GPU_CHECK_SECONDS, 0: none) starts no data shard after N seconds: the data stage fills
# the time the check takes and no more (its index says how many stories it made), so the recipe's data tables
# are upper bounds.
# A stage that fails is logged and the stages that do not need it still run; the script then exits non-zero.
# TEACHER_FALLBACK=WEIGHTS (with STUDENT_FALLBACK=WEIGHTS): when the run's teacher left no weights, the student's
# stages distil from that teacher instead, skipping the ODE initialisation and starting DMD from STUDENT_FALLBACK
# (a GPU minute is not lost to one stage's failure). The log says so; no fallback is taken silently.
# STAGES="data teacher students" (the default; any of the three): the parts this call runs, so that a run can be
# split over calls on one machine (the data and teacher first, the students from OUT's teacher in the next call):
# a machine lost mid-call then takes one part with it, not the whole run. The check goes with the data.
# DMD_SHARE=F (default 0.5): the share of the time left that intra-shot DMD takes; inter-shot DMD gets the rest.
set -euo pipefail
out=${1:?usage: build/train_gpu.sh OUT [RECIPE] [SECONDS]}
recipe=${2:-build/recipes/tiny-p1-gpu.toml}
budget=${3:-1800}
cd "$(dirname "$0")/.."
device=$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
deadline=$(( $(date +%s) + budget ))
left_minutes() {  # a share $2 of the minutes left before the deadline, less a margin of $1 seconds (0 when none)
  python -c "import time; print(max(0.0, round($2 * ($deadline - time.time() - $1) / 60, 2)))"
}
preset=(); [ -n "${PRESET:-}" ] && preset=(--preset "$PRESET")
train() { python -m shotstream.cli train "$@" --recipe "$recipe" --data "$out/data" --workers "$(nproc)" --device "$device"; }
learn() { train "$@" "${preset[@]}"; }  # the teacher and the student's stages (the data has no preset)
stages=" ${STAGES:-data teacher students} "
has() { [[ $stages == *" $1 "* ]]; }
for part in $stages; do
  case $part in data|teacher|students) ;; *) echo "STAGES: '$part' is none of data, teacher, students" >&2; exit 2 ;; esac
done
mkdir -p "$out"
# every 10 s while the script runs: memory, load and the GPU's memory and use (how close a run came to the machine's
# limits; packed with the logs)
( while kill -0 $$ 2> /dev/null; do
    echo "$(date -u +%T) $(awk '/MemAvailable/ {printf "ram_available_mb=%d", $2 / 1024}' /proc/meminfo)" \
      "load=$(cut -d' ' -f1 /proc/loadavg)" \
      "$(nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader 2> /dev/null | head -n 1)"
    sleep 10
  done ) >> "$out/resources.log" 2>&1 < /dev/null &
{
  check=
  if has data; then  # the check goes beside the data
    if [ "${GPU_CHECK_SECONDS:-0}" -gt 0 ]; then
      echo "== $(date -u +%FT%TZ) gpu_check beside the data (${GPU_CHECK_SECONDS} s)"
      mode=; [ "$device" = cpu ] && mode=--cpu-reduced
      # shellcheck disable=SC2086
      GPU_CHECK_SECONDS=$GPU_CHECK_SECONDS bash build/gpu_check.sh "$out/gpu_check" $mode ${GPU_CHECK_ARGS:-} \
        > "$out/gpu_check.console" 2>&1 &
      check=$!
    fi
    data_seconds=${DATA_SECONDS:-${GPU_CHECK_SECONDS:-0}}
    bound=(); [ "$data_seconds" -gt 0 ] && bound=(--minutes "$(python -c "print($data_seconds / 60)")")
    echo "== $(date -u +%FT%TZ) data (encode on $device${bound:+, at most $data_seconds s})"
    # beside the check, the renderers yield the cores to it (its timed steps keep their figures; they take what is left)
    ( if [ -n "$check" ]; then
        renice -n 10 -p "$BASHPID" > /dev/null 2>&1 \
          || echo "== no renice here: the data stage runs at the check's priority"
      fi
      train data "${bound[@]}" )
    if [ -n "$check" ]; then
      if wait "$check"; then status=0; else status=$?; fi
      echo "== $(date -u +%FT%TZ) gpu_check exit $status: $(tail -n 1 "$out/gpu_check.console")"
    fi
  fi
  failed=0
  stage_failed() { echo "== $(date -u +%FT%TZ) $1 failed (exit $2)"; failed=1; }
  if has teacher; then
    echo "== $(date -u +%FT%TZ) teacher"
    teacher_init=(); [ -n "${TEACHER_INIT:-}" ] && teacher_init=(--init "$TEACHER_INIT")
    learn teacher --out "$out/teacher" "${teacher_init[@]}" || stage_failed teacher $?
  fi
  if has students; then
    teacher=$out/teacher/teacher.safetensors
    first_init=$out/ode/student.safetensors
    if [ ! -f "$teacher" ] && [ -n "${TEACHER_FALLBACK:-}" ]; then
      teacher=$TEACHER_FALLBACK; first_init=${STUDENT_FALLBACK:-$first_init}
      echo "== no teacher from this run: the student's stages distil from $teacher, DMD starts from $first_init"
    elif [ -f "$teacher" ]; then
      echo "== $(date -u +%FT%TZ) student: ODE initialisation"
      learn ode --teacher "$teacher" --out "$out/ode" || stage_failed ode $?
    fi
    # the intra-shot stage takes DMD_SHARE of what is left, the inter-shot one the rest
    for stage in dmd dmd-long; do
      init=$first_init; share=${DMD_SHARE:-0.5}
      [ "$stage" = dmd-long ] && { init=$out/dmd/student.safetensors; share=1.0; }
      [ -f "$teacher" ] || { echo "== no teacher weights at $teacher: $stage skipped"; continue; }
      [ -f "$init" ] || { echo "== no $init: $stage skipped"; continue; }
      minutes=$(left_minutes 30 $share)
      if python -c "import sys; sys.exit(0 if $minutes >= 0.5 else 1)"; then
        echo "== $(date -u +%FT%TZ) student: $stage ($minutes minutes)"
        learn "$stage" --teacher "$teacher" --init "$init" --out "$out/$stage" --minutes "$minutes" \
          || stage_failed "$stage" $?
      else
        echo "== $(date -u +%FT%TZ) student: $stage skipped ($minutes minutes left)"
      fi
    done
  fi
  echo "== $(date -u +%FT%TZ) done$( [ "$failed" = 0 ] || echo ', with a failed stage' )"
  exit "$failed"
} 2>&1 | tee -a "$out/run.log"
