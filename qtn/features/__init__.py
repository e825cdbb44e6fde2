"""Feature maps x -> product state and the matching circuit angle encodings."""

from qtn.features.encoding import angle_encoding, ry_matrix
from qtn.features.maps import (
    FeatureMap,
    get_feature_map,
    list_feature_maps,
    one_hot,
    register_feature_map,
    spin_coherent,
    trigonometric,
)

__all__ = [
    "FeatureMap",
    "get_feature_map",
    "list_feature_maps",
    "register_feature_map",
    "trigonometric",
    "spin_coherent",
    "one_hot",
    "angle_encoding",
    "ry_matrix",
]
