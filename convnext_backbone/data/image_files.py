"""Image files, checked as cheaply as their number allows.

A stat per file finds what is missing or empty (seconds for COCO's 118k images); decoding is
slower (about 10 ms an image), so at startup only a sample is decoded, spread evenly over the
list so that a bad stretch anywhere in it is likely to be hit. What the sample misses is named
when the run loads it (:mod:`convnext_backbone.data.loading`).
"""
import io
import os
from typing import List, Optional, Sequence, Tuple


def missing_and_empty(paths: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``(missing, empty)``: the paths that are no file, and the files of 0 bytes."""
    missing, empty = [], []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            missing.append(path)
            continue
        if not os.path.isfile(path):
            missing.append(path)
        elif info.st_size == 0:
            empty.append(path)
    return missing, empty


def sample_positions(count: int, size: int) -> List[int]:
    """``size`` positions out of ``range(count)``, evenly spread, first and last included
    (all of them when ``count <= size``)."""
    if count <= size:
        return list(range(count))
    if size <= 1:
        return [0][:size]
    return sorted({round(i * (count - 1) / (size - 1)) for i in range(size)})


def undecodable(path: str) -> Optional[str]:
    """Why the image at ``path`` does not decode (None when it does)."""
    try:
        if os.path.getsize(path) == 0:
            return 'the file is empty (0 bytes)'
    except OSError as error:
        return _reason(error)
    return _decode(path)


def undecodable_bytes(data: bytes) -> Optional[str]:
    """Why ``data`` (a file's content, as a storage backend returned it) does not decode as an
    image (None when it does)."""
    if not data:
        return 'the file is empty (0 bytes)'
    return _decode(io.BytesIO(data))


def _decode(source) -> Optional[str]:
    from PIL import Image
    try:
        with Image.open(source) as image:
            image.load()
    except Exception as error:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        return _reason(error)
    return None


def _reason(error: BaseException) -> str:
    first = str(error).splitlines()[0] if str(error) else ''
    return f'{type(error).__name__}: {first}'
