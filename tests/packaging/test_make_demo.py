"""The README's first command works every time: `make demo` / `make demo-seg` run again train
afresh, replacing the demo's own earlier checkpoints on purpose, evaluate, and end with the
result and whether it is in the stated range (tools/demo_result.py). The commands are the docs'
own (tests/docs): `make demo` (README.md) over an earlier demo's work dir (the shared toy
detector run: the same config, data and tool), and `make demo-seg` (README.md), each with the
variables that put it in this test's environment and folders (PY: the running interpreter, `-o
setup`: the environment is the one running these tests; TOY, DET, SEG: the test's folders) and
shrunk only through the Makefile's documented variables: TOY_OPTIONS (a tiny toy set) and
DEMO_OPTIONS (one epoch of two iterations, or two iterations). `make -n` checks the recipes as
make prints them (the overwrite itself: tests/reliability/test_work_dir.py)."""
import shlex
import subprocess
import sys

import pytest
from doc_commands import doc_command
from shared_runs import copy_run

from conftest import REPO

DEMO = 'make demo'
DEMO_SEG = 'make demo-seg'
TINY_DATA = '--num-train 4 --num-val 2 --size 64'  # as conftest's toy_root


def make(command, toy, work_dirs, options):
    """The docs' make ``command`` (from ``doc_command``) in this environment, on the test's
    folders, ``options`` as DEMO_OPTIONS, the tiny toy set through TOY_OPTIONS (after the
    command's own)."""
    argv = shlex.split(command)
    own = next((a.split('=', 1)[1] for a in argv if a.startswith('TOY_OPTIONS=')), '')
    argv = [a for a in argv if not a.startswith('TOY_OPTIONS=')]
    if '-o' not in argv:
        argv[1:1] = ['-o', 'setup']
    proc = subprocess.run(
        [*argv, '--no-print-directory', '-C', str(REPO), f'PY={sys.executable}', f'TOY={toy}',
         f'TOY_OPTIONS={own} {TINY_DATA}'.strip(), *[f'{k}={v}' for k, v in work_dirs.items()],
         'DEMO_OPTIONS=' + ' '.join(options)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'{command} exited {proc.returncode}\n' \
        f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout + proc.stderr


def det_options(coco):
    ann = f'{coco}/annotations/instances_val2017.json'
    return [*(f'{loader}.dataset.data_root={coco}/' for loader in
              ('train_dataloader', 'val_dataloader', 'test_dataloader')),
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
            'train_dataloader.batch_size=2', 'train_cfg.max_epochs=1']


@pytest.mark.slow  # the tools in subprocesses
def test_make_demo_again_trains_afresh_and_evaluates(trained_det_run, tmp_path):
    work_dir, toy = tmp_path / 'demo_maskrcnn', tmp_path / 'toy'
    copy_run(trained_det_run, work_dir)  # an earlier demo's work dir
    before = (work_dir / 'epoch_1.pth').stat().st_mtime_ns
    out = make(doc_command(DEMO), toy, {'DET': work_dir}, det_options(toy / 'coco'))
    assert f'make demo: training afresh, replacing the earlier demo\'s checkpoints in {work_dir}' \
        in out
    assert 'coco/bbox_mAP' in out and 'coco/segm_mAP' in out
    # shrunk by DEMO_OPTIONS: the last line gives the result without judging it
    result, = [li for li in out.splitlines() if li.startswith('make demo result: box AP ')]
    assert "the run was changed (make's DEMO_OPTIONS / TOY_OPTIONS)" in result
    assert (work_dir / 'epoch_1.pth').stat().st_mtime_ns > before  # trained again
    assert len(list((work_dir / 'predictions').glob('*.jpg'))) == 2  # both toy val images


@pytest.mark.slow  # the tools in subprocesses
def test_make_demo_seg_trains_and_evaluates(tmp_path):
    work_dir, toy = tmp_path / 'demo_upernet', tmp_path / 'toy'
    ade = toy / 'ade' / 'ADEChallengeData2016'
    options = [*(f'{loader}.dataset.data_root={ade}' for loader in
                 ('train_dataloader', 'val_dataloader', 'test_dataloader')),
               'train_dataloader.batch_size=2', 'train_cfg.max_iters=2',
               'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2']
    out = make(doc_command(DEMO_SEG), toy, {'SEG': work_dir}, options)
    assert 'mIoU' in out and (work_dir / 'iter_2.pth').is_file()
    result, = [li for li in out.splitlines() if li.startswith('make demo-seg result: mIoU ')]
    assert "the run was changed (make's DEMO_OPTIONS / TOY_OPTIONS)" in result
    # the predictions drawn where the demo says (an absolute --show-dir: mmseg's layout)
    assert len(list((work_dir / 'predictions').rglob('*.png'))) == 2


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
