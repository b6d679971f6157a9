#!/usr/bin/env bash
# The GPU proof (issue #25) in one prepared run on one GPU machine (docs/gpu-proof.md says how to bring it there):
#
#   bash benchmarks/gpu_proof.sh DATA_DIR OUT_DIR [STAGE ...]      stages: env tests bench fast full (default: all)
#
#   env    the machine: GPU, driver, CUDA, cuDNN, Python, torch and the packages' versions, CPU cores
#   tests  pytest -m gpu (tests/test_gpu.py): bf16 + channels_last, torch.compile, a run and its resume, evaluation,
#          every CAM method and ROAD against the CPU, the app's handlers and its server on CUDA
#   bench  python -m benchmarks gpu pipeline: training images/s eager and compiled, the loader alone and with the
#          step, the original project's step on the same GPU (ratios), the CPU augmentation per process
#   fast   train.py --recipe fast, end to end (data loading included), and its time to 87%
#   full   train.py --recipe full, likewise, and its time to 94% (target: under 90 s on one H100/H200)
#
# Each stage runs under its own time limit (LIMIT_<STAGE>=seconds overrides it) and logs to runs/gpu-proof/logs/; a
# failed stage does not stop the next. TRAIN_ARGS adds to both training commands (e.g. "--compile --workers 14").
# The run folders and logs go to runs/gpu-proof/; OUT_DIR gets five files at most: summary.txt (a line per stage),
# logs.tgz, the fast run's record (history, metrics, card) and the full run folder whole, as a .tgz cut in 15 MiB
# parts (`cat full-run.tgz.part-* | tar xz` joins it). DATA_DIR (train.npz, test.npz) is read by fast and full only. Without CUDA the script stops at
# once; GPU_PROOF_ON_CPU=1 rehearses it on the CPU (with TRAIN_ARGS="--epochs 1" and a small DATA_DIR).
set -uo pipefail
if [ $# -lt 2 ]; then sed -n '2,21p' "$0"; exit 2; fi
data=$(realpath "$1") out=$(realpath -m "$2")
shift 2
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(env tests bench fast full)
cd "$(dirname "$0")/.."
# No progress bars in the logs; no usage statistics sent from a machine that reaches nothing.
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1 GRADIO_ANALYTICS_ENABLED=False
if [ "${GPU_PROOF_ON_CPU:-}" != 1 ] && ! python3 -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "error: no CUDA GPU here (GPU_PROOF_ON_CPU=1 rehearses this script on the CPU)" >&2
    exit 2
fi
runs=runs/gpu-proof
rm -rf "$runs/logs"
mkdir -p "$out" "$runs/logs"

env_stage() {
    nvidia-smi || true
    python3 - <<'EOF'
import importlib.metadata as metadata, os, platform, torch
print(f"Python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}, {os.cpu_count()} CPU cores")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"{p.name}: {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}, {p.multi_processor_count} SMs")
for name in ("torchvision", "triton", "numpy", "albumentations", "albucore", "opencv-python-headless", "gradio",
             "gradio-client", "huggingface-hub", "safetensors", "pydantic", "scipy", "pillow", "pytest"):
    try:
        print(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name} MISSING")
import albumentations, gradio, cifar.page.layout  # what the other stages import: a missing package fails here first
EOF
}

train_stage() {  # recipe, accuracies to report
    rm -rf "$runs/$1"
    local started=$SECONDS
    # shellcheck disable=SC2086
    python3 train.py --recipe "$1" --data-dir "$data" --out "$runs/$1" ${TRAIN_ARGS:-} || return
    echo "train.py --recipe $1 ${TRAIN_ARGS:-}: $((SECONDS - started)) s end to end (start-up, data, training, the run folder)"
    python3 -m benchmarks history --model "$runs/$1"
}

run_stage() {
    local stage=$1 started=$SECONDS status
    local limit_name="LIMIT_${stage^^}"
    local limit=${!limit_name:-${default_limit[$stage]}}
    echo "=== $stage (limit ${limit} s)"
    case $stage in
        env) env_stage ;;
        tests) timeout "$limit" python3 -m pytest -m gpu tests/test_gpu.py -n 0 -s -v -p no:cacheprovider ;;
        bench) timeout "$limit" python3 -m benchmarks gpu pipeline ;;
        fast|full) export -f train_stage; export data runs; timeout "$limit" bash -c "train_stage $stage" ;;
        *) echo "unknown stage $stage"; false ;;
    esac > >(tee "$runs/logs/$stage.log") 2>&1
    status=$?
    case $status in 0) status=passed ;; 124) status="timed out" ;; *) status="failed (exit $status)" ;; esac
    echo "$stage: $status ($((SECONDS - started)) s)" | tee -a "$out/summary.txt"
}

declare -A default_limit=([env]=120 [tests]=360 [bench]=300 [fast]=240 [full]=480)
for stage in "${stages[@]}"; do
    run_stage "$stage"
done
sleep 1  # the last tee's output
tar czf "$out/logs.tgz" -C "$runs" logs
if [ -d "$runs/fast" ]; then
    tar czf "$out/fast-run-record.tgz" -C "$runs" --exclude '*.npz' --exclude '*.safetensors' --exclude '*.png' fast
fi
if [ -f "$runs/full/model.safetensors" ]; then
    tar czf - -C "$runs" full | split -b 15M -d -a 1 - "$out/full-run.tgz.part-"
fi
echo "=== summary"
cat "$out/summary.txt"
