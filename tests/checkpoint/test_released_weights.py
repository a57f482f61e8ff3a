"""The paper's released models, evaluated by name (``tools/test.py CONFIG released``) or by URL,
and loaded by URL through the hosts' own APIs, against a loopback HTTP server that serves toy
checkpoints laid out as the released files (release_layout.py: mmdet 2.11 / mmseg 0.x pickles
with the old ``meta``). Nothing leaves the machine: the name is looked up in a model index
written here (``$CONVNEXT_MODEL_INDEX``) whose published host never resolves (``.invalid``), and
``$CONVNEXT_RELEASE_BASE`` points the lookup at the server, the way a mirror's user would; torch
hub's cache lives in the test's folder (``$TORCH_HOME``)."""
import os
import re

import numpy as np
import pytest
import torch
from doc_commands import doc_argv
from mmengine.config import Config
from mmengine.runner import CheckpointLoader, Runner
from release_layout import (
    MMDET_2_11_NAMES,
    MMSEG_0_X_NAMES,
    closed_port_url,
    save_released,
    served,
    write_model_index,
)

from convnext_backbone import compat
from convnext_backbone.checkpoint import (
    MODEL_INDEX_ENV,
    RELEASE_BASE_ENV,
    CheckpointMismatchError,
    DownloadError,
    NoReleasedWeightsError,
    checkpoint_argument,
    download,
    find_release,
    is_complete_checkpoint,
    released_weights,
)
from convnext_backbone.cli import config as tool_config
from convnext_backbone.cli import error_line

from conftest import REPO, load_tool, run_tool

TOY_DET = 'configs/toy/maskrcnn_convnext_toy_coco.py'
TOY_SEG = 'configs/toy/upernet_convnext_toy_ade20k.py'
DET_CLASSES = ('rectangle', 'ellipse', 'triangle', 'star')
SEG_CLASSES = ('sky', 'ground', 'rectangle', 'ellipse', 'triangle')
DET_FILE = 'mask_rcnn_convnext_toy_1k_3x.pth'
SEG_FILE = 'upernet_convnext_toy_1k_96x96.pth'
TRAINED_SEG_FILE = 'upernet_convnext_toy_trained_1k_96x96.pth'
PUBLISHED = 'https://release-host.invalid/convnext'  # .invalid never resolves (RFC 2606)


def host_config(config, **options):
    """The toy config as the hosts' APIs get it (detections at any score, so outputs compare)."""
    cfg = Config.fromfile(REPO / config)
    if 'roi_head' in cfg.model:
        cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.merge_from_dict(options)
    return cfg


def built(config, seed):
    """The toy model with its own initialisation under ``seed`` (no checkpoint)."""
    torch.manual_seed(seed)
    if 'roi_head' in Config.fromfile(REPO / config).model:
        from mmdet.apis import init_detector
        return init_detector(host_config(config), None, device='cpu')
    from mmseg.apis import init_model
    return init_model(host_config(config), None, device='cpu')


def tensors_of(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def cached_files(folder):
    """The cache's files, but for the lock files downloads take turns on."""
    return sorted(name for name in os.listdir(folder) if not name.endswith('.lock'))


def assert_loaded(model, path):
    """Every tensor of the model is the file's."""
    state, expected = model.state_dict(), tensors_of(path)
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in state)


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """The toy detector and segmentor in the released layout, served; a model index naming them
    at an address that never resolves. Yields ``(server, www, index)``."""
    www = tmp_path_factory.mktemp('www')
    save_released(built(TOY_DET, seed=1).state_dict(), www / DET_FILE, 'det', DET_CLASSES)
    save_released(built(TOY_SEG, seed=1).state_dict(), www / SEG_FILE, 'seg', SEG_CLASSES)
    index = write_model_index(tmp_path_factory.mktemp('index'), [
        ('maskrcnn_convnext_toy_coco', REPO / TOY_DET, f'{PUBLISHED}/coco/{DET_FILE}',
         {'box AP': 12.3}),
        ('upernet_convnext_toy_ade20k', REPO / TOY_SEG, f'{PUBLISHED}/ade20k/{TRAINED_SEG_FILE}',
         {'mIoU': 45.6})])
    with served(www) as server:
        yield server, www, index


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """torch hub's cache in the test's folder; returns its checkpoints folder."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    return tmp_path / 'torch' / 'hub' / 'checkpoints'


@pytest.fixture
def mirrored(release, torch_home, monkeypatch):
    """The release looked up in the test's index, fetched from the server."""
    server, _, index = release
    monkeypatch.setenv(MODEL_INDEX_ENV, str(index))
    monkeypatch.setenv(RELEASE_BASE_ENV, server.url)
    return release


def test_the_files_carry_the_old_libraries_names_and_meta(release):
    _, www, _ = release
    for name, expected, version in ((DET_FILE, MMDET_2_11_NAMES, 'mmdet_version'),
                                    (SEG_FILE, MMSEG_0_X_NAMES, 'mmseg_version')):
        checkpoint = torch.load(www / name, map_location='cpu', weights_only=True)
        assert [k for k in expected if k not in checkpoint['state_dict']] == []
        assert isinstance(checkpoint['meta']['CLASSES'], tuple)
        assert isinstance(checkpoint['meta']['config'], str) and version in checkpoint['meta']


def test_released_names_the_indexed_weights_at_the_mirror(mirrored, tmp_path, monkeypatch):
    server, _, _ = mirrored
    assert find_release(TOY_SEG).name == 'upernet_convnext_toy_ade20k'
    assert released_weights(TOY_SEG) == f'{server.url}/{TRAINED_SEG_FILE}'
    copy = tmp_path / 'upernet_convnext_toy_ade20k.py'  # e.g. the config `mim download` writes
    copy.write_text('_base_ = []\n')
    assert find_release(str(copy)).name == 'upernet_convnext_toy_ade20k'
    monkeypatch.delenv(RELEASE_BASE_ENV)
    assert released_weights(TOY_SEG) == f'{PUBLISHED}/ade20k/{TRAINED_SEG_FILE}'
    monkeypatch.setenv(RELEASE_BASE_ENV, '/data/convnext')
    with pytest.raises(Exception, match='is not a folder URL: give an http://'):
        released_weights(TOY_SEG)


def test_a_mirror_can_be_a_folder_on_disk(release, torch_home, monkeypatch):
    _, www, index = release
    monkeypatch.setenv(MODEL_INDEX_ENV, str(index))
    monkeypatch.setenv(RELEASE_BASE_ENV, www.as_uri())  # file:///...
    assert checkpoint_argument('released', TOY_DET) == str(torch_home / DET_FILE)
    assert tensors_of(torch_home / DET_FILE).keys() == tensors_of(www / DET_FILE).keys()


def test_a_config_without_released_weights_names_those_that_have_them(mirrored):
    with pytest.raises(NoReleasedWeightsError) as info:
        checkpoint_argument('released', 'configs/maskrcnn/maskrcnn_convnext_t_1x_coco.py')
    message = str(info.value)
    assert '\n' not in message and 'maskrcnn_convnext_t_1x_coco.py: no released weights' in message
    assert 'upernet_convnext_toy_ade20k' in message and 'maskrcnn_convnext_t_3x_coco' in message


def test_without_internet_one_line_names_the_file_the_url_and_the_cache_path(
        mirrored, torch_home, monkeypatch):
    base = closed_port_url()
    monkeypatch.setenv(RELEASE_BASE_ENV, base)
    with pytest.raises(DownloadError) as info:
        checkpoint_argument('released', TOY_SEG)
    message = str(info.value)
    assert '\n' not in message
    assert f'{base}/{TRAINED_SEG_FILE}' in message
    assert f'put it at {torch_home / TRAINED_SEG_FILE}' in message
    assert not torch_home.exists() or cached_files(torch_home) == []


def test_init_detector_and_det_inferencer_load_a_released_url(release, torch_home):
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    server, www, _ = release
    server.requests.clear()
    url = f'{server.url}/{DET_FILE}'
    by_url = init_detector(host_config(TOY_DET), url, device='cpu')
    by_file = init_detector(host_config(TOY_DET), str(www / DET_FILE), device='cpu')
    assert_loaded(by_url, www / DET_FILE)
    assert by_url.dataset_meta['classes'] == DET_CLASSES  # the host reads the old meta
    image = np.random.RandomState(0).randint(0, 256, (97, 131, 3), dtype=np.uint8)
    a, b = inference_detector(by_url, image), inference_detector(by_file, image)
    assert len(a.pred_instances) > 0
    torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes, rtol=0, atol=0)
    inferencer = DetInferencer(model=host_config(TOY_DET), weights=url, device='cpu',
                               show_progress=False)
    assert_loaded(inferencer.model, www / DET_FILE)
    assert server.asked(DET_FILE) == 1  # then from the cache
    assert is_complete_checkpoint(str(torch_home / DET_FILE))


def test_init_model_and_mmseg_inferencer_load_a_released_url(release, torch_home):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    server, www, _ = release
    server.requests.clear()
    url = f'{server.url}/{SEG_FILE}'
    by_url = init_model(host_config(TOY_SEG), url, device='cpu')
    by_file = init_model(host_config(TOY_SEG), str(www / SEG_FILE), device='cpu')
    assert_loaded(by_url, www / SEG_FILE)
    assert by_url.dataset_meta['classes'] == SEG_CLASSES
    image = np.random.RandomState(0).randint(0, 256, (97, 131, 3), dtype=np.uint8)
    a, b = inference_model(by_url, image), inference_model(by_file, image)
    torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data, rtol=0, atol=0)
    inferencer = MMSegInferencer(model=host_config(TOY_SEG), weights=url, device='cpu')
    assert_loaded(inferencer.model, www / SEG_FILE)
    assert server.asked(SEG_FILE) == 1


def test_a_transfer_cut_off_is_never_loaded_and_the_next_run_downloads_it_again(
        release, torch_home):
    from mmseg.apis import init_model
    server, www, _ = release
    server.requests.clear()
    url = f'{server.url}/{SEG_FILE}'
    server.cut_next(SEG_FILE)
    size = (www / SEG_FILE).stat().st_size
    with pytest.raises(DownloadError, match=f'stopped after {size // 2} of {size} bytes') as info:
        init_model(host_config(TOY_SEG), url, device='cpu')
    assert '\n' not in str(info.value) and 'nothing was kept' in str(info.value)
    assert cached_files(torch_home) == []  # neither the file nor a temporary one
    assert_loaded(init_model(host_config(TOY_SEG), url, device='cpu'), www / SEG_FILE)
    assert server.asked(SEG_FILE) == 2


def test_a_url_of_a_folder_is_refused_in_one_line(release, torch_home):
    server, _, _ = release
    with pytest.raises(DownloadError, match='names a folder, not a checkpoint file'):
        download(f'{server.url}/')


def test_processes_wanting_the_same_file_at_once_download_it_once(release, torch_home):
    """As the ranks of ``tools/dist_test.sh CONFIG released N`` do (here threads)."""
    import concurrent.futures
    server, www, _ = release
    server.requests.clear()
    url = f'{server.url}/{SEG_FILE}'
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(download, [url] * 4))
    assert paths == [str(torch_home / SEG_FILE)] * 4 and server.asked(SEG_FILE) == 1
    assert cached_files(torch_home) == [SEG_FILE]


def test_without_the_fix_the_host_caches_a_cut_off_transfer_which_ours_fetches_again(
        release, torch_home):
    server, www, _ = release
    server.requests.clear()
    url = f'{server.url}/{SEG_FILE}'
    fix = compat.FIXES['checked_checkpoint_downloads']
    fix.undo.pop()()
    try:
        assert fix.needed()
        server.cut_next(SEG_FILE)
        with pytest.raises(RuntimeError, match='failed finding central directory'):
            CheckpointLoader.load_checkpoint(url, map_location='cpu')  # torch hub kept half
    finally:
        fix.undo.append(fix.apply())
    cached = torch_home / SEG_FILE
    assert cached.is_file() and not is_complete_checkpoint(str(cached))
    assert download(url) == str(cached)  # ours: recognised as cut off, fetched again
    assert is_complete_checkpoint(str(cached)) and server.asked(SEG_FILE) == 2
    assert tensors_of(cached).keys() == tensors_of(www / SEG_FILE).keys()


@pytest.mark.slow  # builds and saves the toy detector in the released layout (about 4 s)
def test_a_file_with_a_tensor_of_another_shape_is_refused_in_one_line(
        release, torch_home, toy_root, tmp_path):
    server, www, _ = release
    state = tensors_of(www / SEG_FILE)
    state['decode_head.conv_seg.weight'] = torch.zeros(6, 64, 1, 1)  # one class too many
    save_released(state, www / 'upernet_wrong_shape.pth', 'seg', SEG_CLASSES + ('star',))
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    with pytest.raises(CheckpointMismatchError) as info:
        load_tool('test').main([TOY_SEG, f'{server.url}/upernet_wrong_shape.pth', '--work-dir',
                                str(tmp_path / 'work'), '--cfg-options',
                                f'test_dataloader.dataset.data_root={ade}',
                                # its own name: the refused run's folder is removed, so the
                                # visualizer mmengine keeps per name must not be one others use
                                f'visualizer.name=refused_{tmp_path.name}'])
    line = error_line(info.value)
    assert '\n' not in line and 'upernet_wrong_shape.pth does not fit the model' in line
    assert 'decode_head.conv_seg.weight [6, 64, 1, 1] vs model [5, 64, 1, 1]' in line


# tools/test.py end to end ------------------------------------------------------------------------

def printed_metrics(output, keys):
    """The values tools/test.py printed for ``keys`` (mmengine prints them with 4 decimals)."""
    found = {}
    for key in keys:
        match = re.search(rf'{re.escape(key)}: (-?\d+\.\d+)', output)
        assert match, f'{key} not printed:\n{output[-3000:]}'
        found[key] = float(match.group(1))
    return found


def host_metrics(config, checkpoint, work_dir, options, dump=None):
    """The metrics of mmengine's own Runner testing ``checkpoint`` from a local file (``dump``:
    the detections also pickled there, as ``tools/test.py --out`` does)."""
    cfg = tool_config.load_config(str(REPO / config), options)
    cfg.work_dir, cfg.load_from = str(work_dir), str(checkpoint)
    if dump is not None:
        cfg.test_evaluator = [cfg.test_evaluator,
                              dict(type='DumpDetResults', out_file_path=str(dump))]
    # mmseg's runtime names its visualizer 'visualizer' and mmengine keeps one instance per name
    # in a process: an earlier in-process run's would write into that run's work dir.
    cfg.visualizer.name = f'visualizer_{work_dir.parent.name}'
    return Runner.from_cfg(cfg).test()


def assert_same_detections(path_a, path_b):
    """Two dumps of detections (mmdet's DumpDetResults) hold the same predictions, exactly."""
    import pickle
    with open(path_a, 'rb') as a, open(path_b, 'rb') as b:
        first, second = pickle.load(a), pickle.load(b)
    assert len(first) == len(second) > 0
    for one, other in zip(first, second):
        assert one['img_id'] == other['img_id']
        pred, ref = one['pred_instances'], other['pred_instances']
        assert len(pred['scores']) > 0  # score threshold 0: detections to compare
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(pred[key], ref[key]), key
        assert [m['counts'] for m in pred['masks']] == [m['counts'] for m in ref['masks']]


@pytest.fixture(scope='module')
def trained_seg(release, trained_seg_run):
    """The toy UperNet briefly trained with tools/train.py (conftest), saved in the released
    layout."""
    _, www, _ = release
    trained = torch.load(trained_seg_run / 'iter_2.pth', map_location='cpu', weights_only=False)
    return save_released(trained['state_dict'], www / TRAINED_SEG_FILE, 'seg', SEG_CLASSES,
                         optimizer=trained['optimizer'])


# README.md: the released weights of a config, by name
BY_NAME = 'python tools/test.py CONFIG released'


@pytest.mark.slow
def test_tools_test_by_name_gives_the_miou_of_the_same_weights_from_a_file(
        mirrored, trained_seg, toy_root, torch_home, tmp_path):
    server, _, _ = mirrored
    server.requests.clear()
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    data = {'test_dataloader.dataset.data_root': str(ade)}
    expected = host_metrics(TOY_SEG, trained_seg, tmp_path / 'host', data)
    python, *command = doc_argv(BY_NAME, CONFIG=TOY_SEG)
    proc = run_tool(*command, '--work-dir', tmp_path / 'tool', '--cfg-options',
                    *[f'{k}={v}' for k, v in data.items()])
    out = proc.stdout + proc.stderr
    assert printed_metrics(out, ['mIoU', 'mAcc', 'aAcc']) == {
        k: round(expected[k], 4) for k in ('mIoU', 'mAcc', 'aAcc')}
    assert f'the released weights {server.url}/{TRAINED_SEG_FILE} (the paper: mIoU 45.6)' in out
    assert re.search(r'all \d+ tensors of the model matched by name and shape; an mmseg 0\.11 '
                     r'checkpoint; 5 classes: sky, ground, rectangle, \.\.\.', out)
    assert (torch_home / TRAINED_SEG_FILE).is_file() and server.asked(TRAINED_SEG_FILE) == 1


@pytest.mark.slow
def test_tools_test_by_url_gives_the_ap_of_the_same_weights_from_a_file(
        release, toy_root, torch_home, tmp_path):
    """The COCO path: an mmdet 2.11 file by URL. The toy detector's weights are random (its AP
    is 0): the AP shows the evaluation ran the same way, the detections themselves (every box,
    score, label and mask kept at score threshold 0, dumped with --out) that the same weights
    were loaded."""
    server, www, _ = release
    coco = toy_root / 'coco'
    data = {'test_dataloader.dataset.data_root': f'{coco}/',
            'test_evaluator.ann_file': f'{coco}/annotations/instances_val2017.json',
            'model.test_cfg.rcnn.score_thr': 0.0}
    host_dump = tmp_path / 'host.pkl'
    expected = host_metrics(TOY_DET, www / DET_FILE, tmp_path / 'host', data, dump=host_dump)
    proc = run_tool(REPO / 'tools' / 'test.py', TOY_DET, f'{server.url}/{DET_FILE}',
                    '--work-dir', tmp_path / 'tool', '--out', tmp_path / 'tool.pkl',
                    '--cfg-options', *[f'{k}={v}' for k, v in data.items()])
    assert_same_detections(tmp_path / 'tool.pkl', host_dump)
    out = proc.stdout + proc.stderr
    keys = ['coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50']
    assert printed_metrics(out, keys) == {k: round(expected[k], 4) for k in keys}
    assert re.search(r'all \d+ tensors of the model matched by name and shape; an mmdet 2\.11 '
                     r'checkpoint; 4 classes: rectangle, ellipse, triangle, \.\.\.', out)
    assert f'Downloading {server.url}/{DET_FILE} to {torch_home / DET_FILE}' in out
