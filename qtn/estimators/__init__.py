"""scikit-learn estimators over qtn models.

- ``base.py``: :class:`TNEstimator` / :class:`TNClassifier`, what every estimator
  shares (validation, scaling, features, chunked inference, output rule, files).
- ``mps.py``: :class:`MPSClassifier`.
- ``circuit.py``: :class:`CircuitClassifier` (Huggins et al.'s circuit-native classifiers).

``__init__`` only stores arguments; ``fit`` validates them and returns self;
learned state ends in ``_``.
"""

from qtn.estimators.base import TNClassifier, TNEstimator
from qtn.estimators.circuit import CircuitClassifier
from qtn.estimators.mps import MPSClassifier

__all__ = ["MPSClassifier", "CircuitClassifier", "TNEstimator", "TNClassifier"]
