"""Learning a network's weights from labelled examples, and measuring how good it is."""

from netspec.train.fit import Epoch, History, fit, resolve_options
from netspec.train.metrics import Evaluation, evaluate

__all__ = ["Epoch", "Evaluation", "History", "evaluate", "fit", "resolve_options"]
