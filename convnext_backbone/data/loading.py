"""``convnext_backbone.CheckedLoadImageFromFile``: the host's ``LoadImageFromFile``, naming
the file when an image does not decode.

mmcv's ``LoadImageFromFile`` fails on a broken image with an error that names no file (a
zero-byte file is a cv2 assertion about an empty buffer) or with a bare assertion, as a
traceback from inside a data loader, possibly hours into a run. This subclass takes the same
arguments and loads the same arrays; when an image cannot be read or decoded it

* ``on_error='stop'`` (default): raises :class:`ImageDecodeError` naming the file, the reason
  and the fix; our tools print it as one ``error:`` line;
* ``on_error='skip'``: logs one warning line naming the file and returns ``None``, which makes
  mmengine's training dataset take another image in its place. Only for training pipelines:
  a test-mode dataset cannot skip an image (its metric would silently change), and our tools
  refuse ``skip`` in a validation or test pipeline at startup.

Our configs' pipelines name it (``dict(type='convnext_backbone.CheckedLoadImageFromFile')``);
any config can. The check at startup (``cli.data_checks``) already stats every listed image
and decodes a sample; this names the ones the sample missed.
"""
import logging

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log

from ..registry import TRANSFORMS
from .errors import ImageDecodeError
from .image_files import undecodable

ON_ERROR = ('stop', 'skip')


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` plus ``on_error`` (``'stop'`` or ``'skip'``)."""

    def __init__(self, *args, on_error: str = 'stop', **kwargs):
        if on_error not in ON_ERROR:
            raise ImageDecodeError(f'CheckedLoadImageFromFile: on_error={on_error!r}; write '
                                   f"one of {', '.join(map(repr, ON_ERROR))}.")
        super().__init__(*args, **kwargs)
        self.on_error = on_error

    def transform(self, results: dict):
        try:
            return super().transform(results)
        except Exception as error:  # cv2, PIL, turbojpeg and mmcv raise different types
            path = results.get('img_path')
            why = undecodable(path) if isinstance(path, str) and _is_file(path) else None
            if why is None:
                first = str(error).strip().splitlines()
                why = f'{type(error).__name__}: {first[-1] if first else ""}'.strip()
            if self.on_error == 'skip':
                print_log(f'skipped {path}: the image does not decode ({why}); another image '
                          'of the dataset takes its place.', logger='current',
                          level=logging.WARNING)
                return None
            raise ImageDecodeError(
                f'{path} does not decode as an image ({why}). Replace the file (re-download '
                "or re-export it) or remove it from the dataset; or let training skip such "
                "images: on_error='skip' in the pipeline's CheckedLoadImageFromFile.") from None

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", on_error='{self.on_error}')"


def _is_file(path: str) -> bool:
    import os.path as osp
    return osp.isfile(path)
