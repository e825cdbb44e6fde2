"""scikit-learn estimators over qtn models.

- ``base.py``: :class:`TNEstimator` / :class:`TNClassifier`, what every estimator
  shares (validation, scaling, features, chunked inference, output rule, files).
- ``mps.py``: :class:`MPSClassifier`; ``ttn.py``: :class:`TTNClassifier`.
- ``generative.py``: :class:`TNGenerative`, the base of density models over discrete data.
- ``born.py``: :class:`BornMachine` (MPS or TTN).
- ``circuit.py``: :class:`CircuitClassifier` (Huggins et al.'s circuit-native classifiers).

``__init__`` only stores arguments; ``fit`` validates them and returns self;
learned state ends in ``_``.
"""

from qtn.estimators.base import TNClassifier, TNEstimator
from qtn.estimators.born import BornMachine
from qtn.estimators.circuit import CircuitClassifier
from qtn.estimators.generative import TNGenerative
from qtn.estimators.mps import MPSClassifier
from qtn.estimators.ttn import TTNClassifier

__all__ = [
    "MPSClassifier",
    "CircuitClassifier",
    "TTNClassifier",
    "BornMachine",
    "TNEstimator",
    "TNClassifier",
    "TNGenerative",
]
