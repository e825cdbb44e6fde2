"""Training: losses by name, one fit loop for every model, gradient epochs and sweeps.

- ``losses.py``: the loss registry (``register_loss``, ``list_losses``).
- ``fit.py``: :class:`FitConfig` (validated), the method registry and :func:`fit`.
- ``gradient.py``: jitted optax epochs from any ``forward(params, phi)``, on one device or
  split over a mesh of devices (``FitConfig(devices=...)``, across processes too).
- ``sweep.py``: two-site sweeps of MPS classifiers on the MPS core.
- ``born_sweep.py``: canonical two-site NLL sweeps of MPS Born machines (Z exact).
- ``tree_sweep.py``: one-tensor sweeps of TTN classifiers with cached environments.
- ``minibatch.py``: :func:`fit_batch_loss`, epochs of SPSA or optax steps on a model's
  own batch loss (the circuit classifiers' hinge loss), with :func:`fit`'s bookkeeping.
- ``spsa.py``: SPSA with momentum.
- ``evaluate.py``: the one chunked evaluation loop, shared with prediction.
"""

from qtn.training.evaluate import apply, evaluate
from qtn.training.fit import (
    FitConfig,
    Method,
    default_optimizer,
    fit,
    list_methods,
    register_method,
)
from qtn.training.losses import Loss, get_loss, list_losses, register_loss
from qtn.training.minibatch import fit_batch_loss

__all__ = [
    "FitConfig",
    "fit",
    "fit_batch_loss",
    "Method",
    "register_method",
    "list_methods",
    "default_optimizer",
    "apply",
    "evaluate",
    "Loss",
    "register_loss",
    "get_loss",
    "list_losses",
]
