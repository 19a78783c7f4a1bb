"""The three tutorial experiments: their configurations and how each one is run."""
import dataclasses

import numpy as np

from legacy_rnn import checkpoints, graphs, mnist_data, toy_data, training
from legacy_rnn.errors import UserError


@dataclasses.dataclass(frozen=True)
class MnistConfig:
    """The MNIST row-by-row classifier (defaults: the seed's)."""
    bidirectional: bool = False
    n_hidden: int = 512
    rnn: str = "static"
    learning_rate: float = 0.001
    seed: int = 0
    dataset: str = "mnist"
    data_dir: str | None = None
    tfds_data_dir: str | None = None
    validation_size: int = mnist_data.VALIDATION_SIZE
    test_len: int = 0  # 0: the whole test split

    @property
    def experiment(self):
        return "mnist_birnn" if self.bidirectional else "mnist_rnn"


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """The variable-length toy-sequence classifier (defaults: the seed's)."""
    n_hidden: int = 64
    rnn: str = "static"
    learning_rate: float = 0.01
    seed: int = 0
    seq_max_len: int = 20
    min_len: int = 3
    max_value: int = 1000
    n_train: int = 1000
    n_test: int = 500
    test_len: int = 0  # 0: all n_test sequences


def _init_from(train, experiment, n_hidden):
    """(train config with the checkpoint prefix resolved, {graph var: checkpoint var} or None)."""
    if not train.init_checkpoint:
        if train.eval_only:
            raise UserError("--eval_only evaluates the weights of --init_checkpoint, and none was "
                            "given. Pass --init_checkpoint=PREFIX (or a --model_dir of a run).")
        return train, None
    prefix = checkpoints.resolve_prefix(train.init_checkpoint)
    names, shape = checkpoints.checkpoint_map(prefix, experiment)
    if shape.n_hidden != n_hidden:
        raise UserError(f"{prefix} holds an LSTM of {shape.n_hidden} units, and this run builds "
                        f"{n_hidden}. Pass --n_hidden={shape.n_hidden}.")
    return dataclasses.replace(train, init_checkpoint=prefix), names


def _head(arrays, test_len):
    n = len(arrays[0])
    if test_len > n:
        raise UserError(f"--test_len={test_len} is more than the {n} test examples. Use a value "
                        f"up to {n}, or 0 for all of them.")
    return tuple(a[:test_len or n] for a in arrays)


def run_mnist(config, train, data_sets=None, probe_size=0):
    """Trains and evaluates the MNIST (Bi)LSTM; `data_sets` overrides reading the data.
    `probe_size`: also return the trained model's logits on that many test examples."""
    train, init_map = _init_from(train, config.experiment, config.n_hidden)
    if data_sets is None:
        data_sets = mnist_data.read_data_sets(config.dataset, config.data_dir,
                                              config.tfds_data_dir, config.seed,
                                              config.validation_size)
    model = graphs.build_mnist_model(config.n_hidden, config.bidirectional, config.rnn,
                                     config.learning_rate, config.seed)
    test = _head((data_sets.test.images, data_sets.test.labels), config.test_len)
    return training.train_and_evaluate(model, train, data_sets.train, test, init_map,
                                       dataclasses.asdict(config), probe_size)


def toy_data_sets(config):
    """(train, test) ToySequenceData, each from its own stream of `config.seed`."""
    def make(stream, n):
        return toy_data.ToySequenceData(np.random.default_rng([config.seed, stream]), n,
                                        config.seq_max_len, config.min_len, config.max_value)
    return make(0, config.n_train), make(1, config.n_test)


def run_toy(config, train, probe_size=0):
    """Trains and evaluates the variable-length toy classifier.
    `probe_size`: also return the trained model's logits on that many test examples."""
    train, init_map = _init_from(train, "toy_dynamic_rnn", config.n_hidden)
    train_set, test_set = toy_data_sets(config)
    model = graphs.build_toy_model(config.n_hidden, config.seq_max_len, config.rnn,
                                   config.learning_rate, config.seed)
    test = _head((test_set.data, test_set.labels, test_set.seqlen), config.test_len)
    return training.train_and_evaluate(model, train, train_set, test, init_map,
                                       dataclasses.asdict(config), probe_size)
