"""The README's first command works every time: `make demo` / `make demo-seg` run again train
afresh, replacing the demo's own earlier checkpoints on purpose, and evaluate. The Makefile
targets themselves, shrunk with DEMO_OPTIONS to a two-iteration run on the shared toy data
(`-o setup`: the environment is the one running these tests)."""
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow  # the tools in subprocesses

TOY_OPTIONS = 'TOY_OPTIONS=--num-train 4 --num-val 2 --size 64'  # as conftest's toy_root


def make(target, toy_root, work_dir, options):
    proc = subprocess.run(
        ['make', '--no-print-directory', '-o', 'setup', '-C', str(REPO), target,
         f'PY={sys.executable}', f'TOY={toy_root}', TOY_OPTIONS, f'DET={work_dir}',
         f'SEG={work_dir}', 'DEMO_OPTIONS=' + ' '.join(options)],
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


def seg_options(ade):
    return [*(f'{loader}.dataset.data_root={ade}' for loader in
              ('train_dataloader', 'val_dataloader', 'test_dataloader')),
            'train_dataloader.batch_size=2', 'train_cfg.max_iters=2',
            'default_hooks.checkpoint.interval=2']


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
    assert (work_dir / 'epoch_1.pth').stat().st_mtime_ns > before  # trained again
    assert len(list((work_dir / 'predictions').glob('*.jpg'))) == 2  # both toy val images


def test_make_demo_seg_over_an_earlier_demo_trains_afresh(toy_root, tmp_path):
    # The state a finished `make demo-seg` leaves (its checkpoint and last_checkpoint), which a
    # plain tools/train.py run into the same work dir refuses.
    work_dir = tmp_path / 'demo_upernet'
    work_dir.mkdir()
    (work_dir / 'iter_300.pth').write_bytes(b'an earlier demo')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_300.pth'))
    out = make('demo-seg', toy_root, work_dir,
               seg_options(toy_root / 'ade' / 'ADEChallengeData2016'))
    assert 'make demo-seg: training afresh' in out
    assert (work_dir / 'last_checkpoint').read_text().strip() == str(work_dir / 'iter_2.pth')
    assert 'mIoU' in out
