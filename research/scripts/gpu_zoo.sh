#!/usr/bin/env bash
# Train a zoo on a lent GPU machine and leave its small artifacts in $OUT (no .h5 weights).
#
# That machine has JAX and no TensorFlow, so Keras runs on JAX there; the Keras wheels travel in
# .whl/ and FER2013 in .devdata/ (scripts/pack_fer2013.py), both carried, both git-ignored.
# Members train --jobs at a time in one GPU, each stopped after --time-limit seconds of training.
#
#   research/scripts/gpu_zoo.sh ZOO CLASSES JOBS TIME_LIMIT [NAME]
# (NAME: train only that member; two of these may run at once, e.g. two class settings.)
# leaves in $OUT: CLASSES.tgz (run's small artifacts, before flip TTA in plain/, after in tta/,
# and the member logs), train_CLASSES.log, gpu_CLASSES.csv (utilisation every 2 s), smoke.log.
set -uo pipefail
ZOO=$1 CLASSES=$2 JOBS=$3 LIMIT=$4 NAME=${5:-}
OUT=${OUT:-/tmp/out}; DATA=/tmp/fer2013.npz; TAG=$CLASSES${NAME:+_$NAME}; RUN=runs/gpu-$TAG
mkdir -p "$OUT"
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
(
  flock 9
  [ -f /tmp/site/.done ] || { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl && touch /tmp/site/.done; } || exit 1
  [ -f $DATA ] || python3 scripts/pack_fer2013.py unpack .devdata $DATA || exit 1
) 9>/tmp/setup.lock || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
SMI=
if [ -z "$NAME" ]; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,nounits -l 2 > "$OUT/gpu_$TAG.csv" &
  SMI=$!
fi
# Smoke first (a minute): one paper member, one epoch of synthetic faces, GPU, bf16, save, predict.
if [ "${SMOKE:-1}" = 1 ] && [ ! -f /tmp/smoke/VGG0.json ]; then
  python3 -m fer_ensemble train VGG0 --zoo "$ZOO" --data synthetic:700 --epochs 1 --run /tmp/smoke \
    > "$OUT/smoke.log" 2>&1 || { tail -40 "$OUT/smoke.log"; kill $SMI 2>/dev/null; exit 1; }
  grep -E '"(device|precision|pipeline|backend|jax|keras)"' /tmp/smoke/VGG0.json
fi
T0=$(date +%s)
if [ -n "$NAME" ]; then
  mkdir -p $RUN/logs
  XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=${MEM_FRACTION:-0.2} \
  python3 -m fer_ensemble train "$NAME" --zoo "$ZOO" --data $DATA --classes "$CLASSES" --run $RUN \
    --time-limit "$LIMIT" > $RUN/logs/$NAME.log 2>&1
  tail -4 $RUN/logs/$NAME.log > "$OUT/train_$TAG.log"
else
  python3 -m fer_ensemble train-all --zoo "$ZOO" --data $DATA --classes "$CLASSES" --run $RUN \
    --jobs "$JOBS" --time-limit "$LIMIT" 2>&1 | tee "$OUT/train_$TAG.log"
fi
echo "zoo wall time: $(( $(date +%s) - T0 )) s" | tee -a "$OUT/train_$TAG.log"
[ -z "$SMI" ] || kill $SMI
C=/tmp/collect_$TAG; rm -rf $C; mkdir -p $C/logs
python3 -m fer_ensemble collect $RUN $C/plain
cp $RUN/logs/*.log $C/logs/ 2>/dev/null
tar czf "$OUT/$TAG.tgz" -C $C .   # the plain artifacts come back even if TTA runs out of time
# Flip TTA, every member in its own process at once: one after another, each would wait for the
# previous one's JAX compiles.
T1=$(date +%s)
for j in $RUN/*.json; do
  m=$(basename "$j" .json)
  [ -f "$RUN/$m.h5" ] || continue
  python3 -m fer_ensemble tta $RUN "$m" --data $DATA > /tmp/tta_${TAG}_$m.log 2>&1 &
done
wait
cat /tmp/tta_${TAG}_*.log | grep -v -i warn | tee -a "$OUT/train_$TAG.log"
echo "flip TTA wall time: $(( $(date +%s) - T1 )) s" | tee -a "$OUT/train_$TAG.log"
python3 -m fer_ensemble collect $RUN $C/tta
tar czf "$OUT/$TAG.tgz.part" -C $C . && mv "$OUT/$TAG.tgz.part" "$OUT/$TAG.tgz"
ls -la "$OUT"
