"""The data a run reads, checked where it is cheap and named where it is not.

* ``errors``      - :class:`DataError` (one ``error:`` line in our tools) and
  :class:`ImageDecodeError`.
* ``image_files`` - a stat per listed image (missing, empty), an evenly spread decode sample.
* ``coco_audit``  - what mmdet's ``CocoDataset`` would drop from a COCO annotation file without
  a word (unknown categories, empty or outside boxes, empty polygons, images without
  annotations), counted once per dataset; an error where mmdet would crash or nothing usable
  remains.
* ``host_paths``  - which files a dataset makes the host read, where and through which fileio
  backend: asked of the dataset class and its pipeline, built lazily by the host.
* ``remote``      - files on other storage than the local disk: a spread sample fetched and
  decoded, the rest said as not checked.
* ``loader_checks`` - each loader's settings (pipeline, samplers, DataLoader arguments, dataset
  paths) built by the host's own builders on stand-ins, before any data is read.
* ``loading``     - ``convnext_backbone.CheckedLoadImageFromFile``: an image that does not decode
  while the run loads it stops the run naming the file (or is skipped with a warning).
"""
from .errors import DataError, ImageDecodeError
from .loading import CheckedLoadImageFromFile

__all__ = ['DataError', 'ImageDecodeError', 'CheckedLoadImageFromFile']
