"""Datasets and transforms.

Loaders return numpy arrays with pixels as float32 in [0, 1]:

- :func:`load_digits` (bundled with scikit-learn, always available),
- :func:`load_mnist`, :func:`load_fashion_mnist` (gzipped IDX files, MD5-verified,
  found via ``data_dir``, ``QTN_DATA_DIR`` or the cache, or downloaded),
- :func:`bars_and_stripes` (generated exactly).
"""

from qtn.data.datasets import (
    bars_and_stripes,
    default_cache_dir,
    find_dataset,
    identify_file,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    locate_dataset,
)
from qtn.data.transforms import (
    binarize,
    downsample,
    flatten_images,
    pixel_order,
    select_classes,
    shift_augment,
    train_val_split,
)

__all__ = [
    "load_digits",
    "load_mnist",
    "load_fashion_mnist",
    "bars_and_stripes",
    "default_cache_dir",
    "find_dataset",
    "locate_dataset",
    "identify_file",
    "downsample",
    "binarize",
    "select_classes",
    "train_val_split",
    "pixel_order",
    "flatten_images",
    "shift_augment",
]
