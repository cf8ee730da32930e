# fer_ensemble: every target installs the package first, so any target works as the first command.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TF      ?= cpu            # cpu -> tensorflow-cpu wheel, gpu -> tensorflow[and-cuda]
DATA    ?= synthetic
ZOO     ?= models_zoo/quick.toml
RUN     ?= runs/$(basename $(notdir $(ZOO)))
ARGS    ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test bench train-all ensemble-search report predict experiments collect results-summary clean

$(BIN)/fer-ensemble: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(strip $(TF)),test]"
	# tf-keras of the installed TensorFlow's version, for the test that writes Keras-2 model files
	$(BIN)/python -m pip install -q --no-deps "tf-keras~=$$($(BIN)/python -c 'import tensorflow as t; print(t.__version__.rsplit(".", 1)[0])').0" \
		|| echo "no tf-keras for this TensorFlow: the test that writes Keras-2 files will skip"
	touch $@

install: $(BIN)/fer-ensemble

demo: install
	$(BIN)/fer-ensemble demo $(ARGS)

test: install
	$(BIN)/python -m pytest -q $(ARGS)

bench: install
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

train-all: install
	$(BIN)/fer-ensemble train-all --data $(DATA) --zoo $(ZOO) --run $(RUN) $(if $(FERPLUS),--ferplus $(FERPLUS)) $(ARGS)

ensemble-search: install
	$(BIN)/fer-ensemble search $(RUN) $(ARGS)

report: install  # RUN/report/report.md; the data is found from the run's sidecars (REPORT_DATA=... to override)
	$(BIN)/fer-ensemble report $(RUN) $(if $(REPORT_DATA),--data $(REPORT_DATA)) $(ARGS)

predict: install  # make predict IN="photo.jpg folder/" RUN=runs/quick [ARGS="--video clip.mp4"]
	$(BIN)/fer-ensemble predict $(IN) --model $(RUN) --out $(RUN)/predictions $(ARGS)

experiments: install  # the studies' experiments on the synthetic faces, or DATA=... (FERPLUS=... for ferplus.toml)
	$(BIN)/fer-ensemble experiment experiments/*.toml $(if $(filter-out synthetic,$(DATA)),--data $(DATA)) $(if $(FERPLUS),--ferplus $(FERPLUS)) $(ARGS)

collect: install  # small artifacts of RUN (no weights) into results/<run name>/
	$(BIN)/fer-ensemble collect $(RUN) results/$(notdir $(RUN))

RESULT_TRACKS ?= fer2013-cpu fer2013-cpu2h fer2013-cpu2h-probe fer2013-cpu-budget fer2013-gpu
results-summary: install  # results/<track>.csv for each committed track, from its sidecars and ensemble.json files
	for t in $(RESULT_TRACKS); do $(BIN)/python scripts/results_summary.py results/$$t || exit 1; done

clean:
	rm -rf runs .pytest_cache
