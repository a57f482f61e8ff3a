"""Every command README.md and docs/*.md give (tests/docs/doc_commands.py) -> how the suite
runs it, or why it does not: the table tests/docs/test_doc_commands.py checks both ways.

- :class:`Run`: a test runs the command as written, taking its line from the docs with
  ``doc_command`` / ``doc_argv`` (placeholders filled in, the test's folders, tiny sizes only
  through options the docs show);
- :class:`Listed`: not run, with the reason (it needs a GPU, internet, COCO or ADE20K, it is
  the suite itself, or it is a measurement run of minutes) and, for a measurement run, what runs
  the same command or the same options at a tiny size (``tiny``: test ids, ``how``: which).
"""
from pathlib import Path
from typing import List, NamedTuple, Tuple

import yaml
from benchmark_listing import BENCH, TINY_BENCH, bench_listing

DOCS = 'tests/docs/test_doc_commands.py'
WHEEL = 'tests/packaging/test_wheel_install.py'
DEMO = 'tests/packaging/test_make_demo.py'
RELEASED = 'tests/checkpoint/test_released_weights.py'
MIM_DOWNLOAD = 'tests/checkpoint/test_mim_download.py'
TOOLS = 'tests/tools/test_train_test_tools.py'


class Run(NamedTuple):
    """Run as written by ``test`` ('path::function': a test, or the fixture or helper its tests
    use); ``note``: anything the reader should know."""
    test: str
    note: str = ''


class Listed(NamedTuple):
    """Not run by the suite: ``reason``; ``tiny``: tests that run the same command (``how`` =
    'same command') or its options ('same options') at a tiny size."""
    reason: str
    tiny: Tuple[str, ...] = ()
    how: str = ''


DEMO_MEASURE = ('measurement run: 6-25 minutes at one thread (300 iterations; the demos\' '
                'ranges in docs/benchmarks.md)')
SUITE = ('the test suite (or part of it) that this check belongs to: running it from the suite '
         'would recurse')
COCO_8_GPUS = 'needs COCO / ADE20K (docs/datasets.md) and 8 GPUs: the paper-size recipe'
def released_configs() -> List[str]:
    """The configs the model index gives released weights (``Weights``), as the docs name them."""
    repo = Path(__file__).resolve().parents[2]
    index = yaml.safe_load((repo / 'model-index.yml').read_text())
    configs = []
    for metafile in index['Import']:
        for model in yaml.safe_load((repo / metafile).read_text()).get('Models') or ():
            if model.get('Weights'):
                configs.append(model['Config'])
    return configs


def bench(text):
    """A tools/benchmark_backbone.py command of docs/benchmarks.md: listed as a measurement
    run, with the tiny runs of its options (benchmark_listing.py)."""
    return Listed(*bench_listing(text))


def listed_bench(text, tiny, how='same command'):
    return Listed(bench_listing(text)[0], tiny, how)


DEPLOY = 'tests/deploy'
REGISTRY = {
    # README.md
    'make demo': Run(f'{DEMO}::test_make_demo_again_trains_afresh_and_evaluates'),
    'make test': Listed(SUITE + '; its steps: make lint (run here), make dist, the suite'),
    'pip wheel --no-deps --no-build-isolation -w dist .': Run(
        f'{WHEEL}::clone_with_wheel', 'unless CONVNEXT_WHEEL names the wheel `make dist` built '
        '(make test)'),
    'pip install -c requirements/constraints.txt '
    '"dist/convnext_backbone-0.1.0-py3-none-any.whl[mmdet,mmseg,mim]"': Run(
        f'{WHEEL}::Installed', 'offline: openmim from a wheel of the installed one'),
    'mim train convnext_backbone my_config.py --work-dir work_dirs/mine': Run(
        f'{WHEEL}::test_a_user_config_outside_the_clone_trains_and_tests_with_mim'),
    'mim test convnext_backbone my_config.py --checkpoint '
    '"$(cat work_dirs/mine/last_checkpoint)"': Run(
        f'{WHEEL}::test_a_user_config_outside_the_clone_trains_and_tests_with_mim'),
    'python tools/train.py my_config.py --work-dir work_dirs/mine': Run(
        f'{TOOLS}::test_an_own_config_inheriting_by_package_name_trains_and_tests_in_a_clone'),
    'python tools/test.py my_config.py CHECKPOINT': Run(
        f'{TOOLS}::test_an_own_config_inheriting_by_package_name_trains_and_tests_in_a_clone'),
    'mim search convnext_backbone': Run(f'{WHEEL}::test_mim_search_lists_the_shipped_configs'),
    # docs/evaluation.md
    'python tools/test.py CONFIG CHECKPOINT': Run(
        'tests/tools/test_train_test_tools.py::'
        'test_toy_detection_test_tool_reports_ap_dumps_and_draws'),
    'python tools/test.py CONFIG CHECKPOINT --tta': Run(
        'tests/tools/test_train_test_tools.py::test_toy_segmentation_multi_scale_flip_test'),
    "python - data/toy work_dirs/demo_maskrcnn/epoch_12.pth <<'EOF'": Listed(
        'measurement run: about 5 minutes after `make demo` (the trained demo evaluated four '
        'ways)', (f'{DEMO}::test_make_demo_again_trains_afresh_and_evaluates',), 'same options'),
    'make demo-seg': Run(f'{DEMO}::test_make_demo_seg_trains_and_evaluates'),
    'pip install --no-build-isolation mmcv==2.1.0': Listed(
        "needs internet (mmcv's sdist from PyPI) and compiles for about 16 minutes: "
        'tools/setup_env.sh runs it once per machine'),
    'make dist': Listed(
        '`make test` runs it before the suite, which installs the wheel it built '
        '(CONVNEXT_WHEEL: tests/packaging/test_wheel_install.py); from inside the suite it '
        'would delete the dist/ that test installs from'),
    'pip install git+https://github.com/cocodataset/panopticapi.git': Listed('needs internet'),
    'python tools/model_index.py': Run(f'{DOCS}::test_cheap_commands_run_as_written'),
    'make gpu-check': Listed(
        'needs a GPU (about 8 minutes on one H100); without one it prints one line: '
        'tests/tools/test_gpu_check.py::test_without_cuda_one_line_and_exit_0'),
    # docs/benchmarks.md: the backbone benchmark (measurement runs; tiny: see bench())
    **{text: bench(text) for text in (
        '.venv/bin/python tools/benchmark_backbone.py',
        '.venv/bin/python tools/benchmark_backbone.py --batch 2 --size 512',
        '.venv/bin/python tools/benchmark_backbone.py --isa avx2',
        '.venv/bin/python tools/benchmark_backbone.py --profile',
        '.venv/bin/python tools/benchmark_backbone.py --modes infer --per-stage',
        '.venv/bin/python tools/benchmark_backbone.py --retain-heap',
        '.venv/bin/python tools/benchmark_backbone.py --impls ours --ablation',
        '.venv/bin/python tools/benchmark_backbone.py --compile --impls ours,timm_cl,mmpretrain_cl',
        '.venv/bin/python tools/benchmark_backbone.py --mode maskrcnn --batch 2 --size 512',
        '.venv/bin/python tools/benchmark_backbone.py --mode upernet --modes infer',
        '.venv/bin/python tools/benchmark_backbone.py --mode with_cp --batch 2 --size 512',
        'python tools/benchmark_backbone.py --impls ours,timm,timm_cl,mmpretrain,mmpretrain_cl '
        '--reps 21 --no-memory',
        'python tools/benchmark_backbone.py --impls ours,timm,timm_cl,mmpretrain,mmpretrain_cl '
        '--reps 21 --no-memory --retain-heap',
        'python tools/benchmark_backbone.py --impls ours,timm,timm_cl,mmpretrain_cl --modes infer '
        '--reps 21 --no-memory --retain-heap --per-stage',
        'python tools/benchmark_backbone.py --impls ours,timm,timm_cl,mmpretrain,mmpretrain_cl '
        '--batch 2 --size 512 --reps 15 --no-memory --per-stage',
        'python tools/benchmark_backbone.py --impls ours,timm,timm_cl,mmpretrain,mmpretrain_cl '
        '--batch 2 --size 512 --reps 15 --no-memory --retain-heap --per-stage',
        'python tools/benchmark_backbone.py --mode maskrcnn --reps 7 --warmup 1 --no-memory',
        'python tools/benchmark_backbone.py --mode upernet --modes infer --reps 7 --warmup 1 '
        '--no-memory',
        'python tools/benchmark_backbone.py --impls ours,timm,timm_cl,mmpretrain --reps 21 '
        '--no-memory',
        'python tools/benchmark_backbone.py --reps 11 --no-memory',
        'python tools/benchmark_backbone.py --reps 9 --no-memory --batch 2 --size 512',
        'python tools/benchmark_backbone.py --mode maskrcnn --reps 4 --warmup 1 --no-memory',
        'python tools/benchmark_backbone.py --mode upernet --modes infer --reps 4 --warmup 1 '
        '--no-memory',
        'python tools/benchmark_backbone.py --isa avx2 --impls ours,timm,timm_cl,mmpretrain_cl '
        '--reps 5 --warmup 1 --no-memory',
        'python tools/benchmark_backbone.py --isa avx2 --impls ours,timm,timm_cl,mmpretrain_cl '
        '--reps 5 --warmup 1 --no-memory --batch 2 --size 512',
        'python tools/benchmark_backbone.py --isa avx512 --impls ours,timm,timm_cl,mmpretrain_cl '
        '--reps 5 --warmup 1 --no-memory',
        'python tools/benchmark_backbone.py --isa avx512 --impls ours,timm,timm_cl,mmpretrain_cl '
        '--reps 5 --warmup 1 --no-memory --batch 2 --size 512',
        'python tools/benchmark_backbone.py --isa avx2 --threads 1 --clock process --no-memory '
        '--reps 3 --warmup 1 --batch 2 --size 512',
        'python tools/benchmark_backbone.py --isa avx512 --threads 1 --clock process --no-memory '
        '--reps 3 --warmup 1 --batch 2 --size 512',
        'python tools/benchmark_backbone.py --isa avx2 --threads 1 --clock process --no-memory '
        '--mode upernet --modes infer --reps 3 --warmup 1',
        'python tools/benchmark_backbone.py --isa avx512 --threads 1 --clock process --no-memory '
        '--mode upernet --modes infer --reps 3 --warmup 1',
        'python tools/benchmark_backbone.py --isa avx2 --threads 1 --clock process --no-memory '
        '--mode maskrcnn --reps 3 --warmup 1',
        'python tools/benchmark_backbone.py --isa avx512 --threads 1 --clock process --no-memory '
        '--mode maskrcnn --reps 3 --warmup 1',
        'python tools/benchmark_backbone.py --reps 9',
        'python tools/benchmark_backbone.py --batch 2 --size 512 --reps 9',
        'python tools/benchmark_backbone.py --mode maskrcnn --batch 2 --size 512 --reps 9',
        'python tools/benchmark_backbone.py --isa avx2 --impls ours,timm_cl,mmpretrain_cl '
        '--ablation --reps 5 --warmup 1 --no-memory',
        'python tools/benchmark_backbone.py --impls ours --ablation --reps 5 --no-memory',
        'python tools/benchmark_backbone.py --impls ours --ablation --reps 5 --no-memory '
        '--batch 2 --size 512',
        'python tools/benchmark_backbone.py --compile --impls ours,timm_cl,mmpretrain_cl --reps 5',
        'python tools/benchmark_backbone.py --mode with_cp --batch 2 --size 512 --reps 5',
    )},
    # run at a tiny size as they are written (sizes through --arch/--batch/--size/--reps/
    # --warmup/--threads/--impls appended; the ISA ones where the CPU lets the tool check them)
    '.venv/bin/python tools/benchmark_backbone.py --threads 1 --clock process': listed_bench(
        '.venv/bin/python tools/benchmark_backbone.py --threads 1 --clock process',
        (TINY_BENCH,)),
    'python tools/benchmark_backbone.py --impls ours,timm_cl --modes infer --reps 7 --no-memory '
    '--retain-heap --profile': listed_bench(
        'python tools/benchmark_backbone.py --impls ours,timm_cl --modes infer --reps 7 '
        '--no-memory --retain-heap --profile', (TINY_BENCH,)),
    'python tools/benchmark_backbone.py --isa avx512 --threads 1 --clock process --no-memory '
    '--reps 3 --warmup 1': listed_bench(
        'python tools/benchmark_backbone.py --isa avx512 --threads 1 --clock process '
        '--no-memory --reps 3 --warmup 1', (TINY_BENCH,)),
    'python tools/benchmark_backbone.py --isa avx2 --threads 1 --clock process --no-memory '
    '--reps 3 --warmup 1': listed_bench(
        'python tools/benchmark_backbone.py --isa avx2 --threads 1 --clock process --no-memory '
        '--reps 3 --warmup 1', (TINY_BENCH,)),
    'python tools/benchmark_backbone.py --arch v2-atto --batch 1 --size 64 --warmup 1 --reps 2 '
    '--ablation --impls ours,timm,mmpretrain_cl --no-memory --per-stage': Run(
        f'{BENCH}::test_backbone_mode_peers_and_ablations_equal_ours'),
    # docs/benchmarks.md: int8 on the trained demos
    'python tools/export.py configs/toy/upernet_convnext_toy_ade20k.py '
    '"$(cat work_dirs/demo_upernet/last_checkpoint)" --out work_dirs/demo_upernet/upernet_toy.onnx '
    '--quantize int8': Listed(
        'measurement run: about 5 minutes after `make demo-seg` (the trained demo, 40 val '
        'images)', (f'{DEPLOY}/test_quantize.py::test_static_int8_upernet_runs_integer_kernels',),
        'same options'),
    'python tools/test_onnx.py configs/toy/upernet_convnext_toy_ade20k.py '
    'work_dirs/demo_upernet/upernet_toy.onnx --threads 2 --work-dir work_dirs/demo_upernet/onnx':
        Run(f'{DEPLOY}/test_evaluate_onnx.py::'
            'test_segmentor_miou_equals_tools_test_through_the_tool',
            "on the test's graph at that path, the toy set"),
    'python tools/test_onnx.py configs/toy/upernet_convnext_toy_ade20k.py '
    'work_dirs/demo_upernet/upernet_toy.int8.onnx --threads 2 --work-dir '
    'work_dirs/demo_upernet/onnx': Listed(
        'measurement run: about 2 minutes after `make demo-seg` and the int8 export',
        (f'{DEPLOY}/test_evaluate_onnx.py::test_segmentor_miou_equals_tools_test_through_the_tool',
         f'{DEPLOY}/test_quantize.py::test_static_int8_detector'), 'same options'),
    'python tools/export.py configs/toy/maskrcnn_convnext_toy_coco.py '
    '"$(cat work_dirs/demo_maskrcnn/last_checkpoint)" --out '
    'work_dirs/demo_maskrcnn/maskrcnn_toy.onnx --quantize int8': Listed(
        'measurement run: about 5 minutes after `make demo`',
        (f'{DEPLOY}/test_quantize.py::test_static_int8_upernet_runs_integer_kernels',),
        'same options'),
    'python tools/export.py configs/toy/maskrcnn_convnext_toy_coco.py '
    '"$(cat work_dirs/demo_maskrcnn/last_checkpoint)" --out '
    'work_dirs/demo_maskrcnn/train/maskrcnn_toy.onnx --quantize int8 --calib-dir '
    'data/toy/coco/train2017': Listed(
        'measurement run: about 5 minutes after `make demo`',
        (f'{DEPLOY}/test_quantize.py::test_static_int8_detector',), 'same options'),
    'python tools/test_onnx.py configs/toy/maskrcnn_convnext_toy_coco.py '
    'work_dirs/demo_maskrcnn/maskrcnn_toy.onnx --threads 2 --work-dir '
    'work_dirs/demo_maskrcnn/onnx': Listed(
        'measurement run: about 3 minutes after `make demo` and the export',
        (f'{DEPLOY}/test_quantize.py::test_static_int8_detector',), 'same options'),
    'python tools/test_onnx.py configs/toy/maskrcnn_convnext_toy_coco.py '
    'work_dirs/demo_maskrcnn/maskrcnn_toy.int8.onnx --threads 2 --work-dir '
    'work_dirs/demo_maskrcnn/onnx': Listed(
        'measurement run: about 3 minutes after `make demo` and the int8 export',
        (f'{DEPLOY}/test_quantize.py::test_static_int8_detector',), 'same options'),
    # docs/benchmarks.md and docs/deployment.md: ONNX Runtime against eager
    'python tools/benchmark_onnx.py --repeat 5 --threads 2': Listed(
        'measurement run: about 8 minutes (all four cases at full size)',
        ('tests/tools/test_benchmark_onnx.py::test_toy_detector_row',), 'same options'),
    'python tools/benchmark_onnx.py --cases upernet maskrcnn --repeat 3 --threads 2 --quantize '
    'int8 int8-dynamic': Listed(
        'measurement run: about 10 minutes (two full-size models, three graphs each)',
        ('tests/tools/test_benchmark_onnx.py::test_toy_detector_row',), 'same options'),
    'python tools/benchmark_onnx.py --cases backbone upernet': Listed(
        'measurement run: about 4 minutes (two full-size cases)',
        ('tests/tools/test_benchmark_onnx.py::test_toy_detector_row',), 'same options'),
    'python tools/benchmarking/record_cpu.py "KIND"': Run(
        'tests/tools/test_isa_reports.py::'
        'test_record_cpu_as_the_docs_write_it_records_this_machine'),
    # README.md and docs/benchmarks.md: the demos with other seeds, ISAs and threads
    'make demo DEMO_SEED=1': Listed(
        'measurement run: about 3 minutes on 2 quiet cores (300 iterations)',
        (f'{DEMO}::test_make_demo_again_trains_afresh_and_evaluates',), 'same command'),
    'OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 make demo DEMO_SEED=0 DET=work_dirs/measure/det_s0_native':
        Listed(DEMO_MEASURE, (f'{DEMO}::test_make_demo_again_trains_afresh_and_evaluates',),
               'same command'),
    'ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 '
    'OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 make demo DEMO_SEED=0 DET=work_dirs/measure/det_s0_avx2':
        Listed(DEMO_MEASURE, (f'{DEMO}::test_make_demo_again_trains_afresh_and_evaluates',),
               'same command'),
    'OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 make demo-seg DEMO_SEED=0 '
    'SEG=work_dirs/measure/seg_s0_native': Listed(
        DEMO_MEASURE, (f'{DEMO}::test_make_demo_seg_trains_and_evaluates',), 'same command'),
    'OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 make demo DEMO_SEED=0 '
    'DET=work_dirs/measure/det_s0_native_2threads': Listed(
        DEMO_MEASURE, (f'{DEMO}::test_make_demo_again_trains_afresh_and_evaluates',),
        'same command'),
    'make -o setup demo TOY_OPTIONS="--only coco"': Listed(
        'measurement run: about 3 minutes (the demo figures: 300 iterations)',
        (f'{DEMO}::test_make_demo_again_trains_afresh_and_evaluates',), 'same command'),
    'CONVNEXT_WHEEL=dist/convnext_backbone-0.1.0-py3-none-any.whl python -m pytest tests -n 2 -q '
    '--durations=80': Listed(SUITE),
    # docs/datasets.md
    'tools/dist_train.sh configs/maskrcnn_convnext_t_coco.py 8': Listed(COCO_8_GPUS),
    'tools/dist_test.sh configs/maskrcnn_convnext_t_coco.py '
    'work_dirs/maskrcnn_convnext_t_coco/epoch_36.pth 8': Listed(COCO_8_GPUS),
    'tools/dist_train.sh configs/upernet/upernet_convnext_t_160k_ade20k.py 8': Listed(COCO_8_GPUS),
    'tools/dist_test.sh configs/upernet/upernet_convnext_t_160k_ade20k.py '
    'work_dirs/upernet_convnext_t_160k_ade20k/iter_160000.pth 8 --tta': Listed(COCO_8_GPUS),
    # docs/deployment.md
    "pip install -e '.[deploy]'": Listed(
        "needs internet (pip's build isolation fetches setuptools) and reinstalls the package "
        'of the environment running the suite; tools/setup_env.sh installs the same extra'),
    'python tools/export.py configs/maskrcnn_convnext_t_coco.py work_dirs/maskrcnn/epoch_36.pth '
    '--out maskrcnn.onnx --verify': Listed(
        'needs work_dirs/maskrcnn/epoch_36.pth, the flagship trained on COCO',
        (f'{DEPLOY}/test_host_equality.py::test_flagship_mask_rcnn',
         f'{DEPLOY}/test_host_equality.py::test_trained_toy_models'), 'same options'),
    'python tools/export.py configs/upernet/upernet_convnext_t_160k_ade20k.py upernet.pth --out '
    'upernet.onnx --cfg-options model.test_cfg.mode=whole': Listed(
        'needs upernet.pth, the UperNet trained on ADE20K',
        (f'{DEPLOY}/test_export.py::test_upernet_random_weights',
         f'{DEPLOY}/test_export_refusals.py::test_slide_config_is_refused'), 'same options'),
    'python tools/export.py configs/maskrcnn_convnext_t_coco.py model.pth --out backbone.onnx '
    '--backbone-only': Listed(
        'needs model.pth, the flagship trained on COCO',
        (f'{DEPLOY}/test_export.py::test_backbone_alone',), 'same options'),
    'python tools/export.py CONFIG CHECKPOINT --out model.onnx --verify-image my_photo.jpg '
    '--reference model_reference/': Run(f'{DEPLOY}/test_user_images.py::exports'),
    'python tools/test_onnx.py configs/toy/maskrcnn_convnext_toy_coco.py maskrcnn.int8.onnx '
    '--threads 2': Run(f'{DEPLOY}/test_quantize.py::test_static_int8_detector',
                       'in-process, on the toy set'),
    'python tools/export.py CONFIG CHECKPOINT --out model.onnx --quantize int8': Run(
        f'{DEPLOY}/test_quantize.py::test_static_int8_upernet_runs_integer_kernels'),
    'python tools/export.py CONFIG CHECKPOINT --out model.onnx --quantize int8 --calib-dir '
    'my_images/ --calib-images 32': Run(f'{DEPLOY}/test_quantize.py::test_static_int8_detector'),
    'python tools/export.py CONFIG CHECKPOINT --out model.onnx --quantize int8-dynamic': Run(
        f'{DEPLOY}/test_quantize.py::test_dynamic_int8_needs_no_calibration'),
    # docs/development.md
    'make lint': Run(f'{DOCS}::test_cheap_commands_run_as_written'),
    'make test-fast': Listed(SUITE),
    'TEST_WORKERS=0 make test': Listed(SUITE),
    'python tools/model_index.py --add': Run(f'{DOCS}::test_cheap_commands_run_as_written'),
    # docs/mixed_precision.md
    'python tools/train.py configs/toy/upernet_convnext_toy_ade20k.py --amp-dtype bfloat16': Run(
        'tests/engine/test_cpu_autocast.py::'
        'test_train_tool_amp_dtype_bfloat16_trains_the_toy_in_bf16', 'on CPUs with bf16'),
    'MMCV_WITH_OPS=1 FORCE_CUDA=1 pip install --no-build-isolation mmcv==2.1.0': Listed(
        "needs a GPU's CUDA toolkit and internet (mmcv's sdist)"),
    'python tools/gpu_check.py --device cpu --dry-run': Listed(
        "runs the GPU check's eight commands at tiny sizes on the CPU (the CUDA tests, six "
        'benchmarks, an ONNX check), each a process: about 4 minutes',
        ('tests/tools/test_gpu_check.py::test_dry_run_plan_is_cpu_and_tiny',
         f'{BENCH}::test_host_model_mode_same_loss_as_host_config'), 'same options'),
    # docs/model_zoo.md
    'python tools/get_flops.py configs/maskrcnn_convnext_t_coco.py --shape 800 1280 --mode '
    'legacy': Listed(
        'measurement run: about 2 minutes (estimated: the flagship traced at 800x1280)',
        ('tests/configs/test_config_flops.py::'
         'test_cli_prints_params_and_flops_of_a_two_stage_detector',), 'same options'),
    'python tools/get_flops.py configs/upernet/upernet_convnext_t_160k_ade20k.py --shape 512 '
    '2048': Listed(
        'measurement run: about 2 minutes (estimated: UperNet T traced at 512x2048)',
        ('tests/configs/test_config_flops.py::'
         'test_segmentor_counts_backbone_and_decode_head_but_not_the_auxiliary_head',),
        'same options'),
    'python tools/get_flops.py CONFIG --shape 512 2048': Listed(
        'measurement run: about 2 minutes per config',
        ('tests/configs/test_config_flops.py::'
         'test_segmentor_counts_backbone_and_decode_head_but_not_the_auxiliary_head',),
        'same options'),
    # docs/promises.md
    'python -m pytest tests/reliability': Listed(SUITE),
    # docs/reliability.md
    'python tools/train.py CONFIG --resume old_run/epoch_12.pth --trust-checkpoint old_run/': Run(
        'tests/reliability/test_untrusted_checkpoints.py::'
        'test_trusted_full_training_checkpoint_still_resumes'),
    'CONVNEXT_TRUSTED_CHECKPOINTS=old_run/ python tools/test.py CONFIG old_run/epoch_12.pth': Run(
        'tests/reliability/test_untrusted_checkpoints.py::'
        'test_trusted_full_training_checkpoint_still_resumes', 'in-process'),
    'python tools/train.py CONFIG --work-dir work_dirs/run --resume': Run(
        'tests/tools/test_train_test_tools.py::test_toy_detection_resumes'),
    # docs/mixed_precision.md: the detector in bf16
    'python tools/train.py configs/toy/maskrcnn_convnext_toy_coco.py --amp-dtype bfloat16': Run(
        'tests/engine/test_cpu_autocast.py::'
        'test_train_tool_amp_dtype_bfloat16_trains_the_toy_in_bf16', 'on CPUs with bf16'),
    # README.md and docs/model_zoo.md: the released weights
    'python tools/test.py CONFIG released': Run(
        f'{RELEASED}::test_tools_test_by_name_gives_the_miou_of_the_same_weights_from_a_file',
        'the toy UperNet released by a local server standing in for the release site'),
    'mim download convnext_backbone --config cascade_maskrcnn_convnext_t_3x_coco --dest DIR':
        Listed('needs internet (the released weights, 1.2 GB)',
               (f'{MIM_DOWNLOAD}::test_mim_download_fetches_a_config_and_its_released_weights',),
               'same options'),
    # docs/benchmarks.md: the zoo's CPU times, the bf16 measurement's data
    'OMP_NUM_THREADS=2 python tools/benchmark.py CONFIG --shape 800 1333 --threads 2 --warmup 0 '
    '--iters 1 --device cpu': Listed(
        'measurement run: 1-3 minutes per config (full-size detectors at 1333x800)',
        (f'{BENCH}::test_config_benchmark_reports_images_per_second',), 'same options'),
    'OMP_NUM_THREADS=2 python tools/benchmark.py CONFIG --shape 512 2048 --threads 2 --warmup 0 '
    '--iters 1 --device cpu': Listed(
        'measurement run: 1-2 minutes per config (full-size UperNets, slide windows)',
        (f'{BENCH}::test_config_benchmark_reports_images_per_second',), 'same options'),
    'OMP_NUM_THREADS=2 python tools/benchmark.py CONFIG --shape 640 2560 --threads 2 --warmup 0 '
    '--iters 1 --device cpu': Listed(
        'measurement run: 1-3 minutes per config (full-size UperNets, slide windows)',
        (f'{BENCH}::test_config_benchmark_reports_images_per_second',), 'same options'),
    'python tools/make_toy_data.py --root /tmp/toy': Listed(
        'measurement run: the full-size toy sets (about a minute) for the bf16 timing',
        ('tests/tools/test_make_toy_data.py::test_output_is_byte_identical_across_runs',),
        'same options'),
}

# docs/model_zoo.md: each released config evaluated (and UperNets with --tta), from the model
# index; the commands the table has beside its literal keys
RELEASED_DATA = ('needs the released weights (internet) and COCO val2017 / ADE20K val '
                 '(docs/datasets.md): the paper\'s numbers')
GENERATED = {
    f'python tools/test.py {config} released{extra}': Listed(
        RELEASED_DATA,
        (f'{RELEASED}::test_tools_test_by_name_gives_the_miou_of_the_same_weights_from_a_file',
         f'{RELEASED}::test_tools_test_by_url_gives_the_ap_of_the_same_weights_from_a_file'),
        'same options')
    for config in released_configs()
    for extra in (('', ' --tta') if '/upernet/' in config else ('',))}
REGISTRY.update(GENERATED)
