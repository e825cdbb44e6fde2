"""Training: losses, jitted optax epochs, DMRG-style sweeps, one shared fit loop."""

from qtn.training.fit import METHODS, FitConfig, evaluate, fit_mps
from qtn.training.losses import get_loss, list_losses

__all__ = ["FitConfig", "fit_mps", "evaluate", "METHODS", "get_loss", "list_losses"]
