# The README's two commands: `make demo` (the main job on generated data) and `make test`.
# Both set up the environment first (tools/setup_env.sh: idempotent, seconds when already done).
VENV ?= .venv
PY := $(VENV)/bin/python
TOY := data/toy
DET := work_dirs/demo_maskrcnn
SEG := work_dirs/demo_upernet

.PHONY: setup lint test test-fast demo demo-seg dist
setup:
	bash tools/setup_env.sh

# ruff (ruff.toml): pycodestyle, pyflakes and import order; part of `make test`.
lint: setup
	$(PY) -m ruff check .

# Two pytest-xdist workers: the suite is mostly end-to-end runs (tools in subprocesses, short
# trainings) that leave a core idle while they start up and read data; each test process and
# the tools it starts run one thread per worker's core (tests/conftest.py: more threads than
# cores made every OpenMP barrier wait, 3-19x slower end-to-end tests under load). Tools run as
# processes forked from a preloaded interpreter, the toy data and trained toys are built once per
# run (tests/tool_process.py, tests/shared_runs.py). 2026-12-07, 2 workers on a quiet 2-core AMD
# EPYC (Zen 4, AVX-512): `bash .ci/run` 7 min 20 s, 1424 tests in 7 min 15 s of pytest
# (docs/benchmarks.md, "The test suite's time").
# TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

# It builds the sdist and the wheel first (make dist): tests/packaging installs that wheel into a
# fresh environment and uses it from outside the clone.
test: setup lint dist
	CONVNEXT_WHEEL="$$(ls $(CURDIR)/dist/convnext_backbone-*.whl)" $(PY) -m pytest tests -n $(TEST_WORKERS)

# The fast part of the suite (about two thirds of the tests; 984 tests in 58 s on the same
# machine, 2026-12-07):
# everything not marked slow (tools or launchers in subprocesses, trainings, configs beyond one
# per family).
test-fast: setup
	$(PY) -m pytest tests -m "not slow" -n $(TEST_WORKERS)

# The sdist, then the wheel built from it (so the sdist is known to be complete), into dist/:
# both carry configs/, tools/ and model-index.yml as convnext_backbone/.mim (setup.py).
dist: setup
	rm -rf dist && mkdir dist
	$(PY) -c 'from setuptools import build_meta; build_meta.build_sdist("dist")'
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w dist dist/convnext_backbone-*.tar.gz

# Mask R-CNN + ConvNeXt through tools/train.py on a generated COCO-format set, then COCO
# evaluation and predictions drawn into $(DET)/predictions; the last line (tools/demo_result.py)
# says the result and whether it is in the range measured on Intel and AMD CPUs. Every run
# trains afresh: the demo replaces its own work dir's checkpoints on purpose
# (--overwrite-checkpoints; the tools refuse that for any work dir unless asked).
# DEMO_SEED: the training's random seed (the same seed on the same CPU and thread count gives
# the same result; other CPU kinds round differently and land elsewhere in the range).
# DEMO_OPTIONS: extra --cfg-options of both tools (the tests shrink the run and point it at their
# data with it), TOY_OPTIONS: make_toy_data.py's; either makes the stated range not apply.
# --show-dir is given absolute: a relative one goes under the test run's timestamped log folder,
# as with mmdet's own tools/test.py.
DEMO_SEED ?= 0
DEMO_OPTIONS ?=
TOY_OPTIONS ?=
DEMO_CHANGED = $(strip $(DEMO_OPTIONS) $(TOY_OPTIONS))
demo: setup
	$(PY) tools/make_toy_data.py --root $(TOY) $(TOY_OPTIONS)
	@test ! -e $(DET)/last_checkpoint || echo "make demo: training afresh, replacing the earlier demo's checkpoints in $(DET)"
	$(PY) tools/train.py configs/toy/maskrcnn_convnext_toy_coco.py --work-dir $(DET) \
		--overwrite-checkpoints --cfg-options randomness.seed=$(DEMO_SEED) $(DEMO_OPTIONS)
	$(PY) tools/test.py configs/toy/maskrcnn_convnext_toy_coco.py "$$(cat $(DET)/last_checkpoint)" \
		--work-dir $(DET)/test --show-dir $(abspath $(DET))/predictions $(if $(DEMO_OPTIONS),--cfg-options $(DEMO_OPTIONS))
	@$(PY) tools/demo_result.py det $(DET)/test --changed "$(DEMO_CHANGED)"

# The same for UperNet + ConvNeXt on a generated ADE20K-layout set (mIoU).
demo-seg: setup
	$(PY) tools/make_toy_data.py --root $(TOY) $(TOY_OPTIONS)
	@test ! -e $(SEG)/last_checkpoint || echo "make demo-seg: training afresh, replacing the earlier demo's checkpoints in $(SEG)"
	$(PY) tools/train.py configs/toy/upernet_convnext_toy_ade20k.py --work-dir $(SEG) \
		--overwrite-checkpoints --cfg-options randomness.seed=$(DEMO_SEED) $(DEMO_OPTIONS)
	$(PY) tools/test.py configs/toy/upernet_convnext_toy_ade20k.py "$$(cat $(SEG)/last_checkpoint)" \
		--work-dir $(SEG)/test --show-dir $(abspath $(SEG))/predictions $(if $(DEMO_OPTIONS),--cfg-options $(DEMO_OPTIONS))
	@$(PY) tools/demo_result.py seg $(SEG)/test --changed "$(DEMO_CHANGED)"

# Correctness and speed on a GPU in one command (about 8 minutes on one H100): the CUDA tests,
# the backbone and Mask R-CNN benchmarks, ONNX on CUDA; one Markdown report. Without a GPU it
# prints one line and does nothing (docs/mixed_precision.md).
.PHONY: gpu-check
gpu-check: setup
	$(PY) tools/gpu_check.py --out work_dirs/gpu_check.md
