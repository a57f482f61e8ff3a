# The README's two commands: `make demo` (the main job on generated data) and `make test`.
# Both set up the environment first (tools/setup_env.sh: idempotent, seconds when already done).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo
setup:
	bash tools/setup_env.sh

test: setup
	$(PY) -m pytest tests

demo: setup
	$(PY) tools/make_toy_data.py --root data/toy
	$(PY) tools/demo.py --data-root data/toy --work-dir work_dirs/demo
