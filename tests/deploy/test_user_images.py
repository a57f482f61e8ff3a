"""The image files users have, through the paths users take: an EXIF-rotated phone JPEG
(orientation 6 and 8), a grayscale PNG, an RGBA PNG, 16-bit PNGs (colour and gray), a 4000x3000
phone photo and a 2048x1024 Cityscapes-like frame, written to disk.

* how the hosts decode them (mmcv's ``LoadImageFromFile`` through the config's own pipeline) is
  what docs/deployment.md says, and what PIL does differently;
* ``tools/export.py --verify-image`` (the docs' command, toy detector and toy segmentor) finds
  the graph equal to ``inference_detector`` / ``inference_model`` on each, and prints the
  loading rule as a note; its ``--reference`` pair (made on the EXIF-rotated photo) is
  reproduced by a port written from the graph's metadata alone (numpy, OpenCV, onnxruntime);
* the docs' plain-onnxruntime example, which loads the file itself, gives
  ``inference_detector``'s detections on each.
"""
import functools
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from deploy_cases import TOY_DET, TOY_SEG, assert_equals_host
from doc_commands import doc_argv, project_folder

from conftest import REPO

pytest.importorskip('onnxruntime')
cv2 = pytest.importorskip('cv2')

from convnext_backbone.deploy import build_model, load_config  # noqa: E402
from convnext_backbone.deploy.verify import compare_detections, write_images  # noqa: E402

SMALL = (97, 131)  # H x W of the files whose property needs no size
LARGE = {'phone_4000x3000.jpg': (3000, 4000), 'frame_2048x1024.png': (1024, 2048)}
# each large file goes through one toy model's check (the suite's time): the phone photo through
# the detector's, the Cityscapes-like frame through the segmentor's and the docs' example
SKIP = {'det': ('frame_2048x1024.png',), 'seg': ('phone_4000x3000.jpg',)}
# the docs' example loads the file itself: files whose decoding PIL gets wrong, and a large one
# (the decoding of the others equals the docs' loading line, test_host_decoding_...)
DOCS_FILES = ('exif6.jpg', 'deepgray16.png', 'frame_2048x1024.png')


def _exif_jpeg(path, bgr, orientation):
    """A JPEG of ``bgr`` as stored pixels, tagged with an EXIF orientation, as phones write."""
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(bgr[..., ::-1]).save(path, exif=exif, quality=95)


@pytest.fixture(scope='module')
def user_files(tmp_path_factory):
    """name -> path of each kind of file, plus the stored pixels they were written from."""
    folder = tmp_path_factory.mktemp('user_images')
    base = cv2.imread(write_images(str(folder), [SMALL], seed=3)[0])
    rng = np.random.default_rng(0)
    files, stored = {}, {}
    for orientation in (6, 8):
        name = f'exif{orientation}.jpg'
        _exif_jpeg(folder / name, base, orientation)
        files[name] = folder / name
    deep = base.astype(np.uint16) * 257 + rng.integers(0, 257, base.shape).astype(np.uint16)
    stored = {'gray.png': cv2.cvtColor(base, cv2.COLOR_BGR2GRAY),
              'rgba.png': np.dstack([base, rng.integers(0, 256, SMALL, dtype=np.uint8)]),
              'deep16.png': deep, 'deepgray16.png': cv2.cvtColor(deep, cv2.COLOR_BGR2GRAY)}
    for name, pixels in stored.items():
        cv2.imwrite(str(folder / name), pixels)
        files[name] = folder / name
    for name, size in LARGE.items():
        source = write_images(str(folder), [size], seed=4)[0]
        if not name.endswith('.jpg'):
            cv2.imwrite(str(folder / name), cv2.imread(source))
        else:
            shutil.copy(source, folder / name)
        files[name] = folder / name
    return dict(files=files, stored=stored, base=base)


@functools.lru_cache(maxsize=None)
def _loading_step(config):
    """The config's own test pipeline's first step (its image loading), built once."""
    from mmcv.transforms import Compose

    from convnext_backbone.deploy.metadata import test_pipeline
    return Compose(test_pipeline(load_config(config))[:1])


def _host_load(config, path):
    """The image as the config's own test pipeline loads it."""
    return _loading_step(config)(dict(img_path=str(path)))['img']


@pytest.mark.slow  # writes the user files, 4000x3000 photos among them (about 3 s)
def test_host_decoding_is_what_the_docs_say(user_files):
    """EXIF orientation applied, gray repeated, alpha dropped, 16 bits cut to the high byte,
    BGR; the docs' loading line gives the same array, PIL's Image.open does not."""
    from PIL import Image
    files, stored, base = user_files['files'], user_files['stored'], user_files['base']
    for name, path in files.items():
        host = _host_load(TOY_DET, path)
        docs = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
        assert host.dtype == np.uint8 and host.ndim == 3 and host.shape[2] == 3, name
        assert np.array_equal(host, docs), name
    sideways = cv2.imread(str(files['exif6.jpg']), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    for orientation, turn in ((6, cv2.ROTATE_90_CLOCKWISE), (8, cv2.ROTATE_90_COUNTERCLOCKWISE)):
        host = _host_load(TOY_DET, files[f'exif{orientation}.jpg'])
        assert host.shape[:2] == SMALL[::-1]
        assert np.array_equal(host, cv2.rotate(sideways, turn))
        assert np.abs(host.astype(int) - cv2.rotate(base, turn)).mean() < 3  # JPEG's loss only
        pil = np.asarray(Image.open(files[f'exif{orientation}.jpg']).convert('RGB'))
        assert pil.shape[:2] == SMALL  # PIL leaves it sideways
    gray = _host_load(TOY_DET, files['gray.png'])
    assert all(np.array_equal(gray[..., c], stored['gray.png']) for c in range(3))
    assert np.array_equal(_host_load(TOY_DET, files['rgba.png']), stored['rgba.png'][..., :3])
    deep = _host_load(TOY_DET, files['deep16.png'])
    assert np.array_equal(deep, (stored['deep16.png'] >> 8).astype(np.uint8))
    assert not np.array_equal(deep, np.round(stored['deep16.png'] / 257).astype(np.uint8))
    deep_gray = _host_load(TOY_DET, files['deepgray16.png'])
    assert np.array_equal(deep_gray[..., 0], (stored['deepgray16.png'] >> 8).astype(np.uint8))
    pil = np.asarray(Image.open(files['deepgray16.png']).convert('RGB'))
    assert np.array_equal(pil[..., 0], np.minimum(stored['deepgray16.png'], 255))  # saturated
    # the segmentor's pipeline decodes the same way
    assert np.array_equal(_host_load(TOY_SEG, files['exif6.jpg']),
                          _host_load(TOY_DET, files['exif6.jpg']))


# The docs' command (docs/deployment.md), run as written in a folder of its own per toy model:
# CONFIG and CHECKPOINT filled in, the EXIF phone JPEG as my_photo.jpg (the reference pair is made
# on it), the other user files added to --verify-image, and a small traced size (--shape).
EXPORT = ('python tools/export.py CONFIG CHECKPOINT --out model.onnx --verify-image my_photo.jpg '
          '--reference model_reference/')


@pytest.fixture(scope='module')
def exports(user_files, tmp_path_factory):
    """The docs' ``tools/export.py ... --verify-image ... --reference`` as a command, once per
    toy model: {'det' | 'seg': (process, onnx path)}."""
    folder, runs = tmp_path_factory.mktemp('user_exports'), {}
    for kind, config in (('det', TOY_DET), ('seg', TOY_SEG)):
        cwd = project_folder(folder / kind)
        shutil.copy(user_files['files']['exif6.jpg'], cwd / 'my_photo.jpg')
        files = [str(path) for name, path in user_files['files'].items() if name not in SKIP[kind]]
        argv = doc_argv(EXPORT, CONFIG=config, CHECKPOINT='none')
        at = argv.index('my_photo.jpg') + 1
        argv[at:at] = files
        proc = subprocess.run([*argv, '--shape', '64', '64'], cwd=cwd, capture_output=True,
                              text=True, timeout=600)
        runs[kind] = (proc, cwd / 'model.onnx')
    return runs


@pytest.mark.slow  # the export tool as a command, on every user file
@pytest.mark.parametrize('kind', ['det', 'seg'])
def test_export_tool_verifies_user_files(exports, user_files, kind):
    proc, out = exports[kind]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = {path.name: next((line for line in proc.stdout.splitlines()
                              if line.startswith(f'{path}: ')), None)
             for path in user_files['files'].values() if path.name not in SKIP[kind]}
    assert all(line and "'ok': True" in line for line in lines.values()), proc.stdout
    assert proc.stdout.strip().endswith('verify: graph equals the host'), proc.stdout
    ties = sum(int(t) for t in re.findall(r"'mask_ties': (\d+)", proc.stdout))
    said = [line for line in proc.stdout.splitlines() if line.startswith('masks: ')]
    assert len(said) == (1 if ties else 0) and (not ties or f'{ties} pixel(s)' in said[0]), said
    notes = [line for line in proc.stdout.splitlines() if line.startswith('note: ')]
    loading = [n for n in notes if 'cv2.IMREAD_COLOR' in n]
    assert len(loading) == 1 and all(word in loading[0] for word in
                                     ('EXIF', 'BGR', 'alpha', '16-bit', 'PIL')), notes
    assert not any('also runs' in n for n in notes), notes  # loading is not a foreign step
    from convnext_backbone.deploy.runtime import OnnxModel
    assert json.loads(OnnxModel(str(out)).metadata['load']) == dict(
        type='LoadImageFromFile', color_type='color', imdecode_backend='cv2',
        channel_order='bgr')
    # the upright size of the EXIF file, the large ones resized by the test pipeline
    assert "'original': (131, 97)" in lines['exif6.jpg'], lines
    large, size = {'det': ('phone_4000x3000.jpg', (3000, 4000)),
                   'seg': ('frame_2048x1024.png', (1024, 2048))}[kind]
    assert f"'original': {size}" in lines[large], lines


def doc_snippets():
    text = (REPO / 'docs' / 'deployment.md').read_text()
    return re.findall(r'<!-- tested: [^>]*-->\s*```python\n(.*?)```', text, re.S)


@pytest.mark.slow  # on the graph the export tool's run (the exports fixture) wrote
def test_docs_example_on_user_files(exports, user_files, tmp_path, monkeypatch):
    """The docs' plain-onnxruntime example (its own loading, resize and rescale; no project
    import) on user files gives inference_detector's count, labels, boxes, scores, masks."""
    from mmdet.apis import inference_detector
    proc, onnx_path = exports['det']
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.copy(onnx_path, tmp_path / 'maskrcnn.onnx')
    monkeypatch.chdir(tmp_path)
    cfg = load_config(TOY_DET)
    model = build_model(cfg)
    model.cfg = cfg
    snippets = doc_snippets()
    assert "cv2.imdecode(np.fromfile('demo.jpg', np.uint8), cv2.IMREAD_COLOR)" in snippets[0]
    reports = {}
    for name in DOCS_FILES:
        path, scope = user_files['files'][name], {}
        for snippet in snippets:
            exec(compile(snippet.replace("'demo.jpg'", repr(str(path))), 'docs/deployment.md',
                         'exec'), scope)
        host = inference_detector(model, str(path)).pred_instances
        out = {key: scope[key] for key in ('boxes', 'scores', 'labels', 'masks')}
        report = compare_detections(out, host, (1.0, 1.0), (scope['h0'], scope['w0']))
        report['input'] = tuple(scope['images'].shape[2:])
        reports[name] = report
        assert host.masks.shape[1:] == (scope['h0'], scope['w0']), name
    assert_equals_host(dict(task='detection', ok=all(r['ok'] for r in reports.values()),
                            images=reports))


@pytest.mark.slow  # on the graphs and reference pairs the export tool's runs wrote
@pytest.mark.parametrize('kind', ['det', 'seg'])
def test_a_port_from_the_metadata_alone_reproduces_the_reference(exports, kind):
    """What a deployer without our Python does: read the metadata JSON, decode the reference
    image as ``load`` says, size it by ``resize``'s rule and resize it with its ``resample``
    call, feed the graph, and compare with the reference pair within the manifest's
    tolerances. The pair's image is a phone JPEG with an EXIF orientation; PIL's loading
    (sideways) does not reproduce it."""
    import onnxruntime as ort
    proc, graph = exports[kind]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = graph.parent / 'model_reference'
    assert 'wrote the reference pair into model_reference/: my_photo.jpg as image.jpg' in \
        proc.stdout, proc.stdout
    meta = json.loads((folder / 'metadata.json').read_text())
    manifest = json.loads((folder / 'reference.json').read_text())
    # the port: nothing of this project, only the metadata
    load, resize = json.loads(meta['load']), json.loads(meta['resize'])
    flags = {'color': cv2.IMREAD_COLOR, 'grayscale': cv2.IMREAD_GRAYSCALE,
             'unchanged': cv2.IMREAD_UNCHANGED}
    image = cv2.imdecode(np.fromfile(str(folder / manifest['image']), np.uint8),
                         flags[load['color_type']])
    size = {'h': image.shape[0], 'w': image.shape[1]}
    exec(resize['rule'], {}, size)
    resized = eval(resize['resample'], {'cv2': cv2}, {'image': image, **size})
    images = np.ascontiguousarray(resized.transpose(2, 0, 1)[None], np.float32)
    session = ort.InferenceSession(str(graph), providers=['CPUExecutionProvider'])
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {'images': images})))
    # checked against the pair
    assert manifest['original_size'] == {'height': SMALL[1], 'width': SMALL[0]}  # upright
    assert images.shape == tuple(manifest['input']['shape']) == (
        1, 3, manifest['input_size']['height'], manifest['input_size']['width'])
    assert np.abs(images - np.load(folder / 'images.npy')).max() == 0  # OpenCV's own resize
    assert list(outputs) == list(manifest['outputs']) and outputs, manifest
    for name, spec in manifest['outputs'].items():
        expected = np.load(folder / spec['file'])
        assert outputs[name].shape == tuple(spec['shape']) == expected.shape, name
        assert str(outputs[name].dtype) == spec['dtype'], name
        assert np.abs(outputs[name].astype(np.float64) - expected).max() <= spec['tolerance']
    if kind == 'det':
        assert len(outputs['scores']) > 0 and manifest['scale_factor'] == [
            pytest.approx(v) for v in size['scale_factor']]
    from PIL import Image  # the usual mistake: PIL leaves the photo sideways
    sideways = np.asarray(Image.open(folder / manifest['image']))
    assert sideways.shape[:2] != (manifest['original_size']['height'],
                                  manifest['original_size']['width'])
