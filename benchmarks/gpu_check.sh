#!/usr/bin/env bash
# Every GPU figure the benchmarks can give, in one call, into one report (a lent GPU is short: at most 8 minutes).
#
#     bash benchmarks/gpu_check.sh [REPORT]      # default report: $OUT/gpu_report.txt, else ./gpu_report.txt
#
# Runs, each under its own time limit so one slow part cannot eat the others':
#   tiers    benchmarks/tiers.py --gpu       classic vs current tier: peaks alone / beside the planner, 16 / 12 GiB
#   planner  benchmarks/planner.py --gpu     the 2B planner sharing a budget with SD 1.5
#   runtime  benchmarks/runtime.py --gpu     every tool under a 6 GB cap through the real manager (--skip-ab)
#   tools    benchmarks/tools.py             vchat tool calls against raw diffusers on the same device
# A part that fails or runs out of time is written as such, and the next one runs.
set -u
cd "$(dirname "$0")/.."
REPORT="${1:-${OUT:-.}/gpu_report.txt}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
START=$(date +%s)
LIMIT=470  # seconds in all; the parts' limits below add up to about this

{
  echo "vchat GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
  "$PY" -c 'import torch, diffusers, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "| diffusers", diffusers.__version__, "| transformers", transformers.__version__)'
} >"$REPORT" 2>&1

part() {  # part NAME SECONDS COMMAND...
  local name=$1 seconds=$2
  shift 2
  local left=$((LIMIT - ($(date +%s) - START)))
  if [ "$left" -lt 20 ]; then
    printf '\n== %s: not run (the 8-minute total is spent)\n' "$name" >>"$REPORT"
    return
  fi
  [ "$seconds" -gt "$left" ] && seconds=$left
  printf '\n== %s (limit %ss): %s\n' "$name" "$seconds" "$*" >>"$REPORT"
  local began=$(date +%s)
  timeout --kill-after=10 "$seconds" "$@" >>"$REPORT" 2>"$REPORT.$name.err"
  local code=$?
  local took=$(($(date +%s) - began))
  if [ "$code" -eq 0 ]; then
    printf -- '-- %s done in %ss\n' "$name" "$took" >>"$REPORT"
  else
    printf -- '-- %s FAILED (exit %s after %ss); last lines of its stderr:\n' "$name" "$code" "$took" >>"$REPORT"
    tail -n 5 "$REPORT.$name.err" >>"$REPORT"
  fi
  rm -f "$REPORT.$name.err"
}

part tiers 200 "$PY" benchmarks/tiers.py --gpu --timeout 90
part planner 90 "$PY" benchmarks/planner.py --gpu --repeats 2
part runtime 110 "$PY" benchmarks/runtime.py --gpu --skip-ab --steps 10
part tools 60 "$PY" benchmarks/tools.py --size 512 --steps 20 --repeats 3

printf '\ntotal %ss\n' "$(($(date +%s) - START))" >>"$REPORT"
echo "report: $REPORT"
