"""Calibration images for static int8 graphs: what the graph will see when deployed.

A static int8 graph fixes the range of every quantized activation once, from the images it is
calibrated on, so those images must be the deployment's: by default the config's own val set
(the images it evaluates on), or a folder of the user's images. Each goes through the config's
test pipeline up to its resize (:func:`.verify.graph_input`), exactly as the contract feeds the
graph, so the ranges hold for the padded sizes the real images give.
"""
import copy
import os
from typing import List, Optional

import numpy as np

from ..data.image_files import sample_positions
from .errors import ExportError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
DEFAULT_COUNT = 16


def spread(items: list, count: int) -> list:
    """``count`` items evenly spread over ``items`` (all of them when there are fewer): a val
    set is often ordered (by id, by scene), so its first images are not a sample of it. The
    same positions as the data checks' decode sample."""
    return [items[i] for i in sample_positions(len(items), count)]


def folder_images(folder: str, count: int) -> List[str]:
    """Image files directly in ``folder`` (sorted by name), ``count`` of them spread."""
    if not os.path.isdir(folder):
        raise ExportError(f'--calib-dir {folder} is not a folder: give a folder of images like '
                          'the ones the graph will run on.')
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise ExportError(f'--calib-dir {folder} holds no image file ({", ".join(IMAGE_SUFFIXES)})'
                          ': give a folder of images like the ones the graph will run on.')
    return [os.path.join(folder, n) for n in spread(names, count)]


def val_images(cfg, count: int) -> List[str]:
    """``count`` image paths spread over the config's val set (its test set without one)."""
    from mmengine.registry import DATASETS, init_default_scope
    init_default_scope(cfg.default_scope)
    loader = cfg.get('val_dataloader') or cfg.get('test_dataloader')
    if not loader or 'dataset' not in loader:
        raise ExportError(f'{cfg.filename} has no val or test dataloader to calibrate on: give '
                          '--calib-dir FOLDER with images like the ones the graph will run on.')
    dataset_cfg = copy.deepcopy(loader['dataset'])
    try:
        dataset = DATASETS.build(dataset_cfg)
        dataset.full_init()
        paths = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
    except Exception as exc:  # a missing annotation file or image folder, mostly
        first = (str(exc).strip().splitlines() or ['(no message)'])[0][:200]
        raise ExportError(f"the config's val set could not be read to calibrate the int8 graph "
                          f'({type(exc).__name__}: {first}): give --calib-dir FOLDER with '
                          'images like the ones the graph will run on, or --quantize '
                          'int8-dynamic (no calibration).') from None
    if not paths:
        raise ExportError("the config's val set is empty: give --calib-dir FOLDER with images "
                          'like the ones the graph will run on.')
    return spread(paths, count)


def calibration_inputs(cfg, folder: Optional[str] = None,
                       count: int = DEFAULT_COUNT) -> List[np.ndarray]:
    """The graph's inputs for the calibration images (``folder``'s, or the val set's): each
    (1, 3, H, W) float32 as the test pipeline resized it, unpadded."""
    from .verify import graph_input
    paths = folder_images(folder, count) if folder else val_images(cfg, count)
    inputs = []
    for path in paths:
        try:
            inputs.append(graph_input(cfg, path)['images'].numpy())
        except Exception as exc:  # an unreadable file: the pipeline's own message
            first = (str(exc).strip().splitlines() or ['(no message)'])[0][:200]
            raise ExportError(f'calibration image {path} could not be read by the test '
                              f'pipeline ({type(exc).__name__}: {first}): remove it or give '
                              'another --calib-dir.') from None
    return inputs
