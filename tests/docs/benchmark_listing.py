"""How the registry lists the benchmark commands of docs/benchmarks.md (tests/docs/registry.py):
measurement runs of minutes, each with an estimate of its length from the step times the docs
record, and the tests that run its options at a tiny size."""
import shlex
from typing import Tuple

BENCH = 'tests/tools/test_benchmark_tools.py'
TINY_BENCH = 'tests/docs/test_doc_commands.py::test_benchmark_commands_at_a_tiny_size'

# Seconds of one timed step at the documented sizes, from docs/benchmarks.md's tables (AMD EPYC
# and Intel Xeon, 2 threads): (mode, batch x size) -> (infer, train) for one implementation.
STEP_SECONDS = {('backbone', 8, 224): (0.6, 1.8), ('backbone', 2, 512): (0.6, 1.9),
                ('maskrcnn', 2, 320): (3.1, 6.5), ('maskrcnn', 2, 512): (6.0, 12.0),
                ('upernet', 2, 512): (9.3, 20.0), ('with_cp', 2, 512): (0.0, 2.2)}
DEFAULTS = {'backbone': (8, 224), 'maskrcnn': (2, 320), 'upernet': (2, 512), 'with_cp': (2, 512)}


def _options(text):
    argv = shlex.split(text, comments=True)
    values, index = {}, 2
    while index < len(argv):
        key = argv[index]
        if index + 1 < len(argv) and not argv[index + 1].startswith('--'):
            values[key], index = argv[index + 1], index + 2
        else:
            values[key], index = True, index + 1
    return values


def benchmark_minutes(text):
    """About how long a tools/benchmark_backbone.py command measures: timed steps x the step
    times of docs/benchmarks.md, plus its probe processes (an estimate, for the table)."""
    o = _options(text)
    mode = o.get('--mode', 'backbone')
    batch, size = int(o.get('--batch', DEFAULTS[mode][0])), int(o.get('--size', DEFAULTS[mode][1]))
    infer, train = STEP_SECONDS.get((mode, batch, size), STEP_SECONDS[(mode, *DEFAULTS[mode])])
    modes = o.get('--modes', 'train' if mode == 'with_cp' else 'infer,train').split(',')
    impls = len(o.get('--impls', 'ours,timm,timm_cl,mmpretrain,mmpretrain_cl').split(',')) \
        if mode == 'backbone' else 2
    impls += 8 if '--ablation' in o else 0
    steps = int(o.get('--warmup', 2)) + int(o.get('--reps', 9)) + (2 if '--profile' in o else 0)
    seconds = steps * impls * sum(t for m, t in (('infer', infer), ('train', train))
                                  if m in modes)
    seconds *= 1.8 if o.get('--threads') == '1' else 1
    seconds += 60 * impls * len(modes) if '--compile' in o else 0
    seconds += 0 if '--no-memory' in o or '--compile' in o else 15 * impls
    return max(1, round(seconds / 60))


def bench_listing(text) -> Tuple[str, Tuple[str, ...], str]:
    """``(reason, tiny, how)`` of a tools/benchmark_backbone.py command of docs/benchmarks.md:
    a measurement run, and the tiny runs of its options (every option of every such command
    runs at a tiny size somewhere, and every such command parses with the tool's own parser:
    test_doc_commands)."""
    o = _options(text)
    mode = o.get('--mode', 'backbone')
    tiny = set()
    if mode in ('maskrcnn', 'upernet'):
        tiny.add(f'{BENCH}::test_host_model_mode_same_loss_as_host_config')
    elif mode == 'with_cp':
        tiny.add(f'{BENCH}::test_with_cp_mode')
    else:
        tiny.add(f'{BENCH}::test_backbone_mode_peers_and_ablations_equal_ours')
    if o.get('--isa') == 'avx2':
        tiny.add(f'{BENCH}::test_isa_option_runs_under_the_isa_and_reports_it')
    if o.get('--isa') == 'avx512' or '--clock' in o or '--retain-heap' in o or \
            '--profile' in o or o.get('--modes') == 'infer':
        tiny.add(TINY_BENCH)
    if '--no-memory' not in o and mode != 'with_cp':
        tiny.add(f'{BENCH}::test_with_cp_mode')  # the peak-memory probe processes
    reason = f'measurement run: about {benchmark_minutes(text)} minutes'
    if '--compile' in o:
        reason += (' (torch.compile of three models, minutes of compilation at any size: no '
                   'tiny run; its options parse)')
        return reason, (), 'parsed only'
    return reason, tuple(sorted(tiny)), 'same options'
