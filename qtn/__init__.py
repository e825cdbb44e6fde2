"""qtn: quantum-classical tensor network machine learning.

The pipeline, one subpackage per stage::

    data -> features -> models -> training -> compilation -> simulation -> export -> execution

and the layers, each importing only those below it (checked by ``make test``)::

    cli
    estimators                      scikit-learn facades (MPSClassifier, TTNClassifier, BornMachine)
    compilation, execution          (compilation: next); Qiskit backends
    simulation                      circuits as cotengra-planned tensor networks
    noise, data, training, export   noise models; datasets; fit loop; Qiskit bridge
    circuit, features, models, metrics

Today data, features, the MPS core and classifier, tree tensor networks, Born
machines with exact sampling, the circuit IR, simulation with noise, Qiskit
export and execution exist; compilation is next. See the README.

Public names are resolved lazily on first use, so ``import qtn`` does no work
and does not import JAX, quimb or Qiskit.

Examples
--------
>>> import qtn
>>> X, y = qtn.data.load_digits()
>>> fm = qtn.get_feature_map("trigonometric")
>>> fm(X[:2]).shape
(2, 8, 8, 2)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from qtn import _devices
from qtn._version import __version__

_devices.configure()  # QTN_CPU_DEVICES=n: n JAX CPU devices (see qtn._devices); JAX not imported

# public name -> module that defines it
_LAZY = {
    # data
    "load_digits": "qtn.data",
    "load_mnist": "qtn.data",
    "load_fashion_mnist": "qtn.data",
    "bars_and_stripes": "qtn.data",
    # features
    "FeatureMap": "qtn.features",
    "get_feature_map": "qtn.features",
    "list_feature_maps": "qtn.features",
    "register_feature_map": "qtn.features",
    "angle_encoding": "qtn.features",
    # models and estimators
    "MPSClassifier": "qtn.estimators",
    "CircuitClassifier": "qtn.estimators",
    "TTNClassifier": "qtn.estimators",
    "BornMachine": "qtn.estimators",
    "MPS": "qtn.models",
    "TTN": "qtn.models",
    "random_mps": "qtn.models",
    "to_quimb": "qtn.interop",
    "from_quimb": "qtn.models",
    # circuits
    "Circuit": "qtn.circuit",
    "Trainable": "qtn.circuit",
    "Feature": "qtn.circuit",
    # simulation, noise, Qiskit
    "simulate": "qtn.simulation",
    "NoiseModel": "qtn.noise",
    "to_qiskit": "qtn.compilation",
    "compile": "qtn.compilation",
    "from_qiskit": "qtn.export",
    "run": "qtn.execution",
    "finetune": "qtn.execution",
    # errors
    "QtnError": "qtn.errors",
    "DataNotFoundError": "qtn.errors",
    "DataIntegrityError": "qtn.errors",
    "NonFiniteError": "qtn.errors",
    "FormatError": "qtn.errors",
    "ContractionTooLargeError": "qtn.errors",
    "ExportError": "qtn.errors",
}
_SUBMODULES = (
    "data",
    "features",
    "models",
    "training",
    "estimators",
    "circuit",
    "simulation",
    "noise",
    "export",
    "compilation",
    "execution",
    "metrics",
    "errors",
    "cli",
)

__all__ = ["__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"qtn.{name}")
    raise AttributeError(f"module 'qtn' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from qtn import (
        circuit,
        compilation,
        data,
        errors,
        estimators,
        execution,
        export,
        features,
        metrics,
        models,
        noise,
        simulation,
        training,
    )
    from qtn.circuit import Circuit, Feature, Trainable
    from qtn.compilation import compile, to_qiskit
    from qtn.data import bars_and_stripes, load_digits, load_fashion_mnist, load_mnist
    from qtn.errors import (
        ContractionTooLargeError,
        DataIntegrityError,
        DataNotFoundError,
        ExportError,
        FormatError,
        NonFiniteError,
        QtnError,
    )
    from qtn.estimators import BornMachine, CircuitClassifier, MPSClassifier, TTNClassifier
    from qtn.execution import finetune, run
    from qtn.export import from_qiskit
    from qtn.features import (
        FeatureMap,
        angle_encoding,
        get_feature_map,
        list_feature_maps,
        register_feature_map,
    )
    from qtn.interop import to_quimb
    from qtn.models import MPS, TTN, from_quimb, random_mps
    from qtn.noise import NoiseModel
    from qtn.simulation import simulate
