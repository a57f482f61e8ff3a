"""The README's first command works every time: `make demo` / `make demo-seg` run again train
afresh, replacing the demo's own earlier checkpoints on purpose, evaluate, and end with the
result and whether it is in the stated range (tools/demo_result.py). `make demo` itself
runs twice, shrunk with DEMO_OPTIONS to a two-iteration run on the shared toy data (`-o setup`:
the environment is the one running these tests); `make demo-seg` is the same recipe, checked as
make prints it (the overwrite itself: tests/reliability/test_work_dir.py)."""
import subprocess
import sys

import pytest

from conftest import REPO

TOY_OPTIONS = 'TOY_OPTIONS=--num-train 4 --num-val 2 --size 64'  # as conftest's toy_root


def make(target, toy_root, work_dir, options):
    proc = subprocess.run(
        ['make', '--no-print-directory', '-o', 'setup', '-C', str(REPO), target,
         f'PY={sys.executable}', f'TOY={toy_root}', TOY_OPTIONS, f'DET={work_dir}',
         'DEMO_OPTIONS=' + ' '.join(options)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'make {target} exited {proc.returncode}\n' \
        f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout + proc.stderr


def det_options(coco):
    ann = f'{coco}/annotations/instances_val2017.json'
    return [*(f'{loader}.dataset.data_root={coco}/' for loader in
              ('train_dataloader', 'val_dataloader', 'test_dataloader')),
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
            'train_dataloader.batch_size=2', 'train_cfg.max_epochs=1']


@pytest.mark.slow  # the tools in subprocesses, twice
def test_make_demo_twice_trains_again_and_evaluates_both_times(toy_root, tmp_path):
    work_dir = tmp_path / 'demo_maskrcnn'
    options = det_options(toy_root / 'coco')
    first = make('demo', toy_root, work_dir, options)
    assert 'coco/bbox_mAP' in first and 'replacing' not in first
    before = (work_dir / 'epoch_1.pth').stat().st_mtime_ns
    second = make('demo', toy_root, work_dir, options)
    assert f'make demo: training afresh, replacing the earlier demo\'s checkpoints in {work_dir}' \
        in second
    assert 'coco/bbox_mAP' in second and 'coco/segm_mAP' in second
    # shrunk by DEMO_OPTIONS: the last line gives the result without judging it
    result, = [li for li in second.splitlines() if li.startswith('make demo result: box AP ')]
    assert "the run was changed (make's DEMO_OPTIONS / TOY_OPTIONS)" in result
    assert (work_dir / 'epoch_1.pth').stat().st_mtime_ns > before  # trained again
    assert len(list((work_dir / 'predictions').glob('*.jpg'))) == 2  # both toy val images


@pytest.mark.parametrize('target, config, work_dir', [
    ('demo', 'configs/toy/maskrcnn_convnext_toy_coco.py', 'work_dirs/demo_maskrcnn'),
    ('demo-seg', 'configs/toy/upernet_convnext_toy_ade20k.py', 'work_dirs/demo_upernet')])
def test_both_demos_replace_their_own_work_dir_and_evaluate_what_they_trained(target, config,
                                                                              work_dir):
    # The recipe `make demo` runs above, for both demos (make -n prints it, runs nothing): the
    # training replaces the demo's own checkpoints on purpose, the evaluation takes the
    # checkpoint that training wrote.
    proc = subprocess.run(['make', '--no-print-directory', '-n', '-o', 'setup', '-C', str(REPO),
                           target, 'PY=python'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [' '.join(line.split()) for line in proc.stdout.replace('\\\n', ' ').splitlines()]
    train, = [line for line in lines if line.startswith('python tools/train.py')]
    test, = [line for line in lines if line.startswith('python tools/test.py')]
    assert train == (f'python tools/train.py {config} --work-dir {work_dir} '
                     '--overwrite-checkpoints --cfg-options randomness.seed=0')  # DEMO_SEED
    assert test.startswith(f'python tools/test.py {config} "$(cat {work_dir}/last_checkpoint)"')
    # the last line: the result and whether it is in the stated range (tools/demo_result.py)
    demo = 'det' if target == 'demo' else 'seg'
    assert lines[-1] == f'python tools/demo_result.py {demo} {work_dir}/test --changed ""'
