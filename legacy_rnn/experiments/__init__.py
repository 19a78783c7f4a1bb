"""The experiments, each a tutorial program: its TF1 graph beside its Keras 3 twin (`base.py` says
what an experiment provides). Each module registers its experiments on import."""
from legacy_rnn.experiments import mnist, toy  # noqa: F401  (each registers itself)
from legacy_rnn.experiments.base import EXPERIMENTS, Data, Experiment, get
from legacy_rnn.experiments.mnist import MNIST_BIRNN, MNIST_RNN
from legacy_rnn.experiments.toy import TOY

__all__ = ["Data", "EXPERIMENTS", "Experiment", "MNIST_BIRNN", "MNIST_RNN", "TOY", "get"]
