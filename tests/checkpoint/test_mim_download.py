"""``mim download convnext_backbone --config NAME --dest DIR`` (docs/model_zoo.md): mim's own
download of a config and its released weights, read from our model index, through a local
server."""
import os
import sys

import pytest
from release_layout import served

from convnext_backbone.checkpoint import find_release


@pytest.mark.slow  # mim's own download through a local server (about 2.5 s)
def test_mim_download_fetches_a_config_and_its_released_weights(tmp_path, monkeypatch):
    """``mim download convnext_backbone --config NAME --dest DIR`` as mim 0.3.9 runs it, on the
    index of the package under test. Two things are pointed elsewhere, because mim has no setting
    for them: where it looks for the package (an editable install is not found by mim: it looks
    in site-packages) and its transport (it fetches each ``Weights`` URL verbatim with
    ``requests``; an https address cannot be served here): the request for the published URL is
    answered by the local server."""
    pytest.importorskip('mim')
    import importlib

    import convnext_backbone
    download_module = importlib.import_module('mim.commands.download')
    download_module = sys.modules['mim.commands.download']  # the package shadows it
    search_module, utils_module = sys.modules['mim.commands.search'], sys.modules['mim.utils.utils']
    package = os.path.dirname(convnext_backbone.__file__)
    monkeypatch.setattr(download_module, 'get_installed_path', lambda name: package)
    monkeypatch.setattr(search_module, 'get_installed_path', lambda name: package)
    www = tmp_path / 'www'
    www.mkdir()
    served_bytes = os.urandom(4096)
    (www / 'mask_rcnn_convnext_tiny_1k_3x.pth').write_bytes(served_bytes)
    asked, fetch = [], utils_module.get_content_from_url
    with served(www) as server:
        def answered_locally(url, *args, **kwargs):
            asked.append(url)
            return fetch(f'{server.url}/{url.rsplit("/", 1)[-1]}', *args, **kwargs)
        monkeypatch.setattr(utils_module, 'get_content_from_url', answered_locally)
        download_module.download('convnext_backbone', ['maskrcnn_convnext_t_3x_coco'],
                                 str(tmp_path / 'dest'))
    assert asked == ['https://dl.fbaipublicfiles.com/convnext/coco/mask_rcnn_convnext_tiny_1k_3x.pth']
    assert (tmp_path / 'dest' / 'mask_rcnn_convnext_tiny_1k_3x.pth').read_bytes() == served_bytes
    dumped = tmp_path / 'dest' / 'maskrcnn_convnext_t_3x_coco.py'
    assert dumped.is_file()
    assert find_release(str(dumped)).weights == asked[0]  # `released` works on mim's copy too
