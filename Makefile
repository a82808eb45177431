# make demo: set up .venv and run fit -> validate -> predict -> export on a synthetic data set.
# make test: set up .venv and run the default test suite (make test-slow: the heavier cases).
# make lint: ruff; make docs: the docs site (MkDocs Material, strict) into site/.
# make studio: Label Studio in .venv-ls (its pins clash with vidclf's), for the slow suite's real-server test.
VENV := .venv
PY := $(VENV)/bin/python
VIDCLF := $(VENV)/bin/vidclf
STAMP := $(VENV)/.installed
RUN := runs/demo/version_0
PYTEST := $(PY) -m pytest -p no:cacheprovider --durations=15
# the default suite in 2 processes (pytest-xdist): 4 min 8 s instead of 6 min 46 s in one, on 2 cores and
# the same 264+122 tests (docs/development.md); the slow suite in one

STUDIO := .venv-ls

.PHONY: install demo test test-slow lint docs clean studio

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: install
	rm -rf data/demo runs/demo
	$(PY) -m vidclf.synthetic data/demo
	$(VIDCLF) fit --config configs/demo.yaml
	$(VIDCLF) validate --config configs/demo.yaml --ckpt_path $(RUN)/checkpoints/best.ckpt
	$(VIDCLF) predict --ckpt_path $(RUN)/checkpoints/best.ckpt --data.predict data/demo/val \
		--output $(RUN)/predictions.csv
	$(VIDCLF) export --ckpt_path $(RUN)/checkpoints/best.ckpt --format onnx --output $(RUN)/model.onnx \
		--data.predict data/demo/val/rising
	$(PY) -m vidclf.demo_summary $(RUN)

test: install
	$(PYTEST) -n 2 -m "not slow" tests

test-slow: install
	$(PYTEST) -m slow tests

studio: $(STUDIO)/.installed

$(STUDIO)/.installed:
	test -x $(STUDIO)/bin/python || python3 -m venv $(STUDIO)
	# sentry-sdk 3 removed an option Label Studio 1.23 passes at start-up
	$(STUDIO)/bin/pip install -q "label-studio==1.23.2" "label-studio-sdk==2.1.2" "sentry-sdk<3"
	touch $@

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples docs/hooks

docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

clean:
	rm -rf data/demo runs site
