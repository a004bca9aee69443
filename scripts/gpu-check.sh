#!/usr/bin/env bash
# The device check on a GPU machine (docs/GPU.md, "The device check"), from the repository root with gpu-bundle/
# (scripts/gpu-bundle.sh) beside it: MediatorDiT.GpuCheck on CUDA device 0, then the PyTorch reference on the same
# card, each under a time limit, then summary.json with the ratios side by side. Everything goes to ${OUT:-gpu-check-out}:
# gpu-check.json, pytorch.json, summary.json, gpu-check.log. Under 8 minutes in all.
# MDIT_CHECK_CASES=prefix,... runs only those cases of ours (e.g. to rerun one that failed), and the PyTorch side only
# when one of them is a speed case. When a parity case fails, the kernel tests on the card follow in this same command
# (scripts/gpu-tests.sh --kernels, into gpu-kernel-tests.json) while MDIT_CHECK_WALL (default 560) seconds in all
# leave them at least 60, to say which kernel is at fault; the exit is then non-zero.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="${OUT:-$root/gpu-check-out}"
mkdir -p "$out"
log="$out/gpu-check.log"
exec > >(tee -a "$log") 2>&1
python="${MDIT_PYTHON:-/opt/torch/.venv/bin/python}"
[ -x "$python" ] || python=python3
# The pip wheels' cuBLAS lives in this environment's nvidia/*/lib, where CudaLibraries looks.
export VIRTUAL_ENV="${VIRTUAL_ENV:-/opt/torch/.venv}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1
start=$(date +%s)
say() { echo "[gpu-check $(( $(date +%s) - start ))s] $*"; }

bundle=$(bash "$root/scripts/gpu-unpack.sh") || { say "error: could not unpack the bundle"; bundle="$root/gpu-bundle"; }
check="$bundle/gpucheck/MediatorDiT.GpuCheck"
say "bundle: $bundle (commit $(cat "$bundle/commit.txt" 2>/dev/null || echo unknown))"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || say "nvidia-smi failed"

rc_ours=127
if [ -x "$check" ]; then
  say "MediatorDiT.GpuCheck (limit 300 s, no case starts after 220 s)"
  timeout -k 10 300 "$check" --out "$out" --accelerator cuda --fixtures "$bundle/fixtures" --budget-seconds 220 \
    ${MDIT_CHECK_CASES:+--cases "$MDIT_CHECK_CASES"}
  rc_ours=$?
  say "MediatorDiT.GpuCheck exit $rc_ours$([ $rc_ours -eq 124 ] && echo ' (timed out; the JSON holds the cases finished)')"
else
  say "error: $check is missing; run scripts/gpu-bundle.sh on the build machine and carry gpu-bundle"
fi

script="$bundle/sit_reference.py"
[ -f "$script" ] || script="$root/bench/pytorch/sit_reference.py"
if [ -n "${MDIT_CHECK_CASES:-}" ] && [[ ",$MDIT_CHECK_CASES" != *,speed* ]]; then
  say "PyTorch reference not run: MDIT_CHECK_CASES=$MDIT_CHECK_CASES asks for no speed case"
  rc_torch=0
else
  say "PyTorch reference with $python (limit 140 s, no case starts after 100 s)"
  # products: the products our training step recorded into gpu-check.json, timed in torch on the same shapes.
  timeout -k 10 140 "$python" "$script" --out "$out/pytorch.json" --budget-seconds 100 --products-from "$out/gpu-check.json"
  rc_torch=$?
  say "PyTorch reference exit $rc_torch$([ $rc_torch -eq 124 ] && echo ' (timed out)')"
fi

say "summary"
"$python" - "$out" "$rc_ours" "$rc_torch" <<'PY'
import json, os, sys
out, rc_ours, rc_torch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except Exception as e:
        return {"load_error": f"{name}: {type(e).__name__}: {e}"}
ours, torch_ = load("gpu-check.json"), load("pytorch.json")
oc, tc = ours.get("cases", {}), torch_.get("cases", {})
def num(case, key):
    v = (case or {}).get(key)
    return v if isinstance(v, (int, float)) else None
pairs = [("speed_training", "train", 0.8), ("speed_sampling_ladder", "sample", 1.5),
         ("speed_long_forward_mediator", "long_mediator", None), ("speed_long_forward_full", "long_full", None)]
rows = {}
for mine, theirs, target in pairs:
    a, b = num(oc.get(mine), "images_per_second"), num(tc.get(theirs), "images_per_second")
    rows[mine] = {"ours_images_per_second": a, "pytorch_images_per_second": b,
                  "ratio_ours_to_pytorch": a / b if a and b else None, "target_ratio": target,
                  "ours_status": (oc.get(mine) or {}).get("status"), "pytorch_status": (tc.get(theirs) or {}).get("status"),
                  "ours_precision": (oc.get(mine) or {}).get("precision"), "pytorch_precision": (tc.get(theirs) or {}).get("precision"),
                  "ours_device_memory_bytes": num(oc.get(mine), "device_memory_used_bytes"),
                  "pytorch_peak_memory_bytes": num(tc.get(theirs), "peak_memory_bytes")}
def products():
    mine, theirs = (oc.get("speed_training") or {}).get("products") or {}, tc.get("products") or {}
    ours_seconds = mine.get("seconds") or {}
    return {"ours_seconds": ours_seconds, "ours_flops_per_second": mine.get("flops_per_second"),
            "pytorch_seconds": num(theirs, "seconds"), "pytorch_flops_per_second": num(theirs, "flops_per_second"),
            "ratio_pytorch_seconds_to_ours": {k: num(theirs, "seconds") / v for k, v in ours_seconds.items()
                                               if isinstance(v, (int, float)) and v and num(theirs, "seconds")},
            "step_products_profiled_seconds": num(((oc.get("speed_training") or {}).get("profile") or {}), "matrix_products_seconds"),
            "note": "the training step's matrix products replayed shape by shape (sum of calls x seconds per call): ours per cuBLAS "
                    "workspace variant, torch's on the same shapes; step_products_profiled_seconds is their time inside the profiled step"}
def sweep(name):
    case = oc.get(name) or {}
    swept = case.get("tile_sweep") or {}
    return {"default": {"tile_floats": swept.get("default_tile_floats"), "images_per_second": num(case, "images_per_second")},
            "others": [{k: t.get(k) for k in ("tile_floats", "tile_megabytes_fp32", "images_per_second")} for t in swept.get("tiles") or []]}
summary = {
    "exit_codes": {"gpu_check": rc_ours, "pytorch": rc_torch},
    "ours_finished": ours.get("finished", False),
    "device": (oc.get("device") or {}).get("name"), "pytorch_device": torch_.get("device_name"),
    "cases": rows,
    "training_mfu_ours_of_bf16_peak": num(oc.get("speed_training"), "mfu_of_bf16_peak"),
    "training_mfu_pytorch_of_bf16_peak": num(tc.get("train"), "mfu_of_bf16_peak"),
    "training_mfu_target": 0.35,
    "mfu_peaks": {"ours": ours.get("peaks"), "pytorch": torch_.get("peaks")},
    "long_forward_mediator_speedup_ours": ours.get("long_forward_mediator_speedup"),
    "long_forward_mediator_speedup_over_fused_full": ours.get("long_forward_mediator_speedup_over_fused"),
    "long_forward_mediator_speedup_pytorch": torch_.get("long_forward_mediator_speedup"),
    "long_forward_speedup_target": 2.5,
    "training_speedup_of_operands_from_producers": ours.get("training_speedup_of_operands_from_producers"),
    "training_fused_attention": {"images_per_second": num(oc.get("speed_training_fused_attention"), "images_per_second"),
                                 "kernels_run": (oc.get("speed_training_fused_attention") or {}).get("fused_kernels_run"),
                                 "speedup_over_tiles": ours.get("training_speedup_of_fused_attention"),
                                 "mfu_of_bf16_peak": num(oc.get("speed_training_fused_attention"), "mfu_of_bf16_peak"),
                                 "loss_difference": ours.get("training_fused_attention_loss_difference"),
                                 "device_memory_bytes": num(oc.get("speed_training_fused_attention"), "device_memory_used_bytes")},
    "training_products": products(),
    "bandwidth": {k: (oc.get("bandwidth") or {}).get(k) for k in ("driver_copy_bytes_per_second", "rounding_kernel_bytes_per_second", "rounding_kernel_of_driver_copy")},
    "tile_sweep": {"speed_training": sweep("speed_training"), "speed_long_forward_full": sweep("speed_long_forward_full")},
    "fused_attention_kernels": {k: v for k, v in (oc.get("fused_attention_kernels") or {}).items() if k in ("Forward", "BackwardKeys", "BackwardQueries", "status", "error")},
    "fused_forward": {k: ((oc.get("speed_long_forward_full") or {}).get("fused_forward") or {}).get(k)
                      for k in ("kernel_runs", "images_per_second", "speedup_over_tiles", "difference_from_tiles", "pass")},
    "training_same_loss_both_roundings": ours.get("training_same_loss_both_roundings"),
    "parity": {k: {"status": v.get("status"), "pass": v.get("pass"), "error": v.get("error")} for k, v in oc.items() if k.startswith("parity")},
    "failed": {"ours": ours.get("failed"), "pytorch": [k for k, v in tc.items() if v.get("status") != "ok"]},
    "speed_precision_ours": ours.get("speed_precision"),
    "load_errors": [d["load_error"] for d in (ours, torch_) if "load_error" in d],
    "note": "ours: parity in fp32 (and bf16 against fp32 in parity_bf16_forward and parity_bf16_training_*), the speed cases in speed_precision_ours (bf16: the linear and attention products take bf16 operands; softmaxes, norms and reductions stay fp32); PyTorch bf16 autocast; sampling: ours one network call per SDE step, PyTorch two",
}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
print(json.dumps(summary, indent=2))
PY
# A failed parity case: the kernel tests on the card say which kernel, now, as the lent machine may be handed back
# before a second command could run them.
parity_failed=$("$python" -c 'import json, sys
s = json.load(open(sys.argv[1]))
print(",".join(k for k, v in s.get("parity", {}).items() if v.get("pass") is False or v.get("status") == "failed"))' "$out/summary.json" 2>/dev/null)
rc_kernels=0
if [ -n "$parity_failed" ]; then
  left=$(( ${MDIT_CHECK_WALL:-560} - ($(date +%s) - start) ))
  if [ "$left" -ge 60 ]; then
    say "parity failed ($parity_failed): the kernel tests on the card (limit $left s)"
    MDIT_TESTS_LIMIT=$left bash "$root/scripts/gpu-tests.sh" --kernels
  else
    say "parity failed ($parity_failed); $left s left: run scripts/gpu-tests.sh --kernels next"
  fi
  rc_kernels=1
fi
say "done; files in $out: $(ls "$out" | tr '\n' ' ')"
[ "$rc_ours" -eq 0 ] && [ "$rc_torch" -eq 0 ] && [ "$rc_kernels" -eq 0 ]
