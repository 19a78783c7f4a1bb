"""The experiments, each a tutorial program: its TF1 graph beside its Keras 3 twin (`base.py` says
what an experiment provides). Adding one is adding its module and one entry here."""
from legacy_rnn.errors import UserError
from legacy_rnn.experiments.base import Data, Experiment
from legacy_rnn.experiments.mnist import MNIST_BIRNN, MNIST_RNN
from legacy_rnn.experiments.toy import TOY

EXPERIMENTS = {e.name: e for e in (MNIST_RNN, MNIST_BIRNN, TOY)}


def get(name):
    if name not in EXPERIMENTS:
        raise UserError(f"Unknown experiment {name!r}; choose one of "
                        f"{', '.join(EXPERIMENTS)}.")
    return EXPERIMENTS[name]


__all__ = ["Data", "EXPERIMENTS", "Experiment", "get"]
