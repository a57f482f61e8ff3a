"""Image files, checked as cheaply as their number allows.

A stat per file finds what is missing or empty (seconds for COCO's 118k images); decoding is
slower (about 10 ms an image), so at startup only a sample is decoded, spread evenly over the
list so that a bad stretch anywhere in it is likely to be hit. What the sample misses is named
when the run loads it (:mod:`convnext_backbone.data.loading`).
"""
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
    from PIL import Image
    try:
        if os.path.getsize(path) == 0:
            return 'the file is empty (0 bytes)'
        with Image.open(path) as image:
            image.load()
    except Exception as error:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        first = str(error).splitlines()[0] if str(error) else ''
        return f'{type(error).__name__}: {first}'
    return None
