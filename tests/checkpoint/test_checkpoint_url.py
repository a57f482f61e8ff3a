"""Configs name the official weights by URL: downloaded once into torch hub's cache, then read
through the same safe path (served here from a loopback HTTP server; nothing leaves the machine)."""
import functools
import http.server
import socket
import threading

import pytest
import torch

from convnext_backbone.checkpoint import CheckpointReadError, read_state_dict


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    return tmp_path / 'hub'


@pytest.fixture
def served(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, request log)."""
    www = tmp_path / 'www'
    www.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Handler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f'http://127.0.0.1:{server.server_address[1]}', requests
    server.shutdown()


def test_url_is_downloaded_once_and_read(served, hub_dir):
    www, base, requests = served
    weights = {'model': {'stem.0.weight': torch.randn(8, 3, 4, 4)}}
    torch.save(weights, www / 'convnext_test.pth')
    for _ in range(2):
        sd = read_state_dict(f'{base}/convnext_test.pth')
        torch.testing.assert_close(sd['stem.0.weight'], weights['model']['stem.0.weight'])
    assert len(requests) == 1  # the second read used the cache
    assert (hub_dir / 'checkpoints' / 'convnext_test.pth').is_file()


def test_unreachable_url_says_where_to_put_a_manual_download(hub_dir):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(CheckpointReadError, match='init_cfg.checkpoint=PATH') as info:
        read_state_dict(f'http://127.0.0.1:{port}/convnext_tiny_1k_224.pth')
    assert str(hub_dir / 'checkpoints' / 'convnext_tiny_1k_224.pth') in str(info.value)
