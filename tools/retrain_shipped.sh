#!/usr/bin/env bash
# Retrain the shipped pair (baseline, augmented; seed 0, the default recipe) on the embedded
# default data and ship it: slimmed checkpoints with their provenance in checkpoints/, the
# config and metrics as run in docs/results/default/, the comparison report in
# docs/results/compare/. Extra arguments go to both train.py runs.
#
#   bash tools/retrain_shipped.sh                  # GPU: both arms side by side (~5 min, H100)
#   bash tools/retrain_shipped.sh                  # CPU: one arm after the other (~2 h each, fp32)
#
# Interrupted (a session's end, a preemption): rerun the same command. Each training resumes
# from its runs/<arm>/checkpoints/last.ckpt; an arm whose metrics.json exists is not retrained.
set -euo pipefail
cd "$(dirname "$0")/.."

if python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    device=(--trainer.accelerator gpu --trainer.precision bf16-mixed --data.num_workers 7)
    side_by_side=1
else
    # bf16 only where the CPU has native bf16 instructions (~18x slower where it has not).
    if grep -q avx512_bf16 /proc/cpuinfo; then precision=bf16-mixed; else precision=32-true; fi
    device=(--trainer.accelerator cpu --trainer.precision "$precision" --data.num_workers 1)
    side_by_side=0
fi

# Generate the data once, before two trainings race to do it.
python -m htr.data.synthetic generate --root data/synthetic

train_arm() {
    local arm=$1; shift
    if [[ -f runs/$arm/metrics.json ]]; then echo "runs/$arm: trained (metrics.json exists)"; return; fi
    python train.py --config "configs/train/$arm.yaml" --run.wandb disabled "${device[@]}" "$@" > "runs/$arm.log" 2>&1
}
mkdir -p runs
if (( side_by_side )); then
    train_arm baseline "$@" & train_arm augmented "$@" & wait
else
    train_arm baseline "$@"; train_arm augmented "$@"
fi

for arm in baseline augmented; do
    best=$(python -c "import json; print(json.load(open('runs/$arm/metrics.json'))['best_checkpoint'])")
    python -m tools.slim_checkpoint "$best" "checkpoints/$arm.ckpt"
    cp "runs/$arm/config.yaml" "docs/results/default/$arm-config.yaml"
    cp "runs/$arm/metrics.json" "docs/results/default/$arm-metrics.json"
done
python evaluate.py checkpoints/baseline.ckpt checkpoints/augmented.ckpt --out docs/results/compare
echo "shipped: checkpoints/{baseline,augmented}.ckpt; update docs/RESULTS.md, checkpoints/README.md, data/README.md"
