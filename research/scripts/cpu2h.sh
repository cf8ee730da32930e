#!/usr/bin/env bash
# Issue #8's budget clause: train research/zoos/cpu2h.toml on FER2013 under a 2-hour stop rule, then
# flip-TTA, collect the small artifacts into results/fer2013-cpu2h/ and run round 35's rule once.
#
#   research/scripts/cpu2h.sh            (resumable: finished members are skipped, an interrupted one
#                                resumes from its BackupAndRestore state)
# Stop rule (declared before the first phase trained): a phase starts only if the summed cost of
# the members already trained (sidecar wall_time_s, fer_ensemble.ensemble.budget.member_cost) plus
# its estimate fits BUDGET seconds; the estimate is its epochs times the slowest seconds-per-epoch
# measured so far (120 s before any, the float32 rate of res_q24 on this machine).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUDGET=${BUDGET:-7200}
ZOO=research/zoos/cpu2h.toml RUN=${RUN:-runs/cpu2h} RESULTS=${RESULTS:-results/fer2013-cpu2h}
DATA=${DATA:-../shared/data/fer2013.npz} FERPLUS=${FERPLUS:-../shared/data/ferplus/fer2013new.csv}
FE=${FE:-.venv/bin/fer-ensemble} PY=${PY:-.venv/bin/python}
export TF_CPP_MIN_LOG_LEVEL=2   # oneDNN stays on: off makes CPU training ~1.85x slower (docs/design.md)
mkdir -p "$RUN"

fits() {  # fits NAME EPOCHS: exit 0 if the phase fits what is left of the budget
  "$PY" - "$RUN" "$1" "$2" "$BUDGET" <<'PY'
import sys
from pathlib import Path
from fer_ensemble._io import read_json
from fer_ensemble.ensemble.budget import member_cost
from fer_ensemble.errors import EnsembleError
run, name, epochs, budget = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
metas = [read_json(p, EnsembleError) for p in sorted(run.glob("*.json")) if not p.name.startswith(".")]
metas = [m for m in metas if "wall_time_s" in m and m.get("name") != name]
spent = sum(member_cost(m) for m in metas)
rate = max([member_cost(m) / m["epochs_run"] for m in metas if m.get("epochs_run")], default=120.0)
ok = spent + epochs * rate <= budget
print(f"budget: spent {spent:.0f} s, {name} needs ~{epochs * rate:.0f} s ({epochs} x {rate:.0f}), "
      f"budget {budget:.0f} s -> {'train' if ok else 'skip'}", flush=True)
sys.exit(0 if ok else 1)
PY
}

for phase in r2h_a:14 r2h_b:14 r2h_c:14 r2h_a_ft:6 r2h_b_ft:6 r2h_c_ft:6; do
  M=${phase%%:*} E=${phase##*:}
  date -u; echo "=== $M"
  if [ ! -f "$RUN/$M.json" ]; then
    fits "$M" "$E" || continue
    "$FE" train "$M" --zoo "$ZOO" --data "$DATA" --ferplus "$FERPLUS" --run "$RUN" || exit 1
  fi
  "$FE" tta "$RUN" "$M" --data "$DATA" || exit 1
  "$FE" collect "$RUN" "$RESULTS" || exit 1
done
date -u; echo "=== search"
"$FE" search "$RESULTS" --top-members 24 --exhaustive-limit 16777216 --cv-folds 5 --select cv || exit 1
date -u; echo "=== cpu2h done"
