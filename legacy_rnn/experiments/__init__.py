"""The experiments, each a tutorial program: its TF1 graph beside its Keras 3 twin (`base.py` says
what an experiment provides). Each module registers its experiments on import, in this order
(the order tools list them in)."""
from legacy_rnn.experiments import mnist, toy  # noqa: F401,I001  (the tutorial three first)
from legacy_rnn.experiments import imdb, series  # noqa: F401
from legacy_rnn.experiments.base import EXPERIMENTS, Data, Experiment, get
from legacy_rnn.experiments.imdb import IMDB
from legacy_rnn.experiments.mnist import MNIST_BIRNN, MNIST_RNN
from legacy_rnn.experiments.series import SERIES
from legacy_rnn.experiments.toy import TOY

__all__ = ["Data", "EXPERIMENTS", "Experiment", "IMDB", "MNIST_BIRNN", "MNIST_RNN", "SERIES",
           "TOY", "get"]
