"""`toy_dynamic_rnn`: variable-length toy sequences, the TF1 graph beside its Keras 3 twin.

TF1: BasicLSTMCell + `static_rnn(..., sequence_length=seqlen)`, the last relevant output
gathered at `range(batch) * seq_max_len + (seqlen - 1)`, `@ W + b`, gradient descent. The twin:
an `LSTM` masked from the lengths (never from the values: `Masking(0.0)` would drop real zeros
inside a sequence), whose final output is its output at the last unmasked step, then `Dense(2)`.
Built-in layers and `keras.ops` only, so a converted file loads without this package.
"""
import dataclasses

import numpy as np
from absl import flags

from legacy_rnn import lazy
from legacy_rnn.cli import programs
from legacy_rnn.data import toy as toy_data
from legacy_rnn.experiments import graphs
from legacy_rnn.training import loop as training
from legacy_rnn.experiments.base import Data, Experiment, register

# Loaded when a graph or model is built, not at import: the program checks its flags first.
keras = lazy.module("keras")
tf = lazy.module("tensorflow")
zoo = lazy.module("legacy_rnn.zoo")

CLASSES = 2


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


class Toy(Experiment):
    name = "toy_dynamic_rnn"
    summary = "BasicLSTMCell + static_rnn with sequence_length over variable-length sequences"
    config = ToyConfig()
    train = training.TrainConfig(training_iters=1000000)
    golden = ToyConfig(n_hidden=8, seq_max_len=8, min_len=1, max_value=100, n_train=64,
                       n_test=32)
    n_classes = CLASSES

    def block(self, config):
        return zoo.Block([zoo.CellSpec.make("basic_lstm", config.n_hidden)], "forward",
                         config.rnn)

    def input_size(self, config):
        return 1

    def build_graph(self, config, optimizer="sgd"):
        graph = graphs.new_graph(config.seed)
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [None, config.seq_max_len, 1], name="x")
            labels = tf.compat.v1.placeholder(tf.float32, [None, CLASSES], name="labels")
            seqlen = tf.compat.v1.placeholder(tf.int32, [None], name="seqlen")
            outputs, _ = zoo.tf1_block(self.block(config), x, seqlen)
            features = graphs.last_relevant_output(outputs, seqlen)
            return graphs.classifier(graph, (x, labels, seqlen), features, labels, optimizer,
                                     config.learning_rate)

    def keras_model(self, config):
        """Inputs `[x [b, time, 1], seqlen [b] int32]`; any time length."""
        x = keras.Input((None, 1), name="x")
        seqlen = keras.Input((), dtype="int32", name="seqlen")
        positions = keras.ops.cumsum(keras.ops.ones_like(x[:, :, 0], dtype="int32"), axis=1)
        mask = keras.ops.less_equal(positions, keras.ops.expand_dims(seqlen, 1))
        features = keras.layers.LSTM(config.n_hidden, name="lstm")(x, mask=mask)
        logits = keras.layers.Dense(CLASSES, name="output")(features)
        return keras.Model([x, seqlen], logits, name=self.name)

    def rnn_layers(self, model):
        return {"fw_0": model.get_layer("lstm")}

    def serving_specs(self, config):
        return {"x": tf.TensorSpec([None, config.seq_max_len, 1], tf.float32, name="x"),
                "seqlen": tf.TensorSpec([None], tf.int32, name="seqlen")}

    def keras_call(self, model, x, seqlen):
        return model([x, seqlen])

    def keras_inputs(self, feeds):
        x, _, seqlen = feeds
        return [x, seqlen]

    def random_feeds(self, config, batch, rng):
        seqlen = rng.integers(1, config.seq_max_len + 1, batch).astype(np.int32)
        x = rng.random((batch, config.seq_max_len, 1)).astype(np.float32)
        x[np.arange(config.seq_max_len) >= seqlen[:, None]] = 0.0
        return x, np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, batch)], seqlen

    def load_data(self, config):
        train, test = toy_data_sets(config)
        return Data(train, (test.data, test.labels, test.seqlen))

    def define_flags(self, flag_values=flags.FLAGS):
        fv, config = flag_values, self.config
        holders = [
            programs.positive_int("n_hidden", config.n_hidden, "LSTM units.", fv),
            flags.DEFINE_enum("rnn", config.rnn, graphs.RNN_APIS, "static: static_rnn with "
                              "sequence_length (the seed); dynamic: dynamic_rnn. Same function, "
                              "same variables.", flag_values=fv),
            programs.positive_int("seq_max_len", config.seq_max_len, "Longest toy sequence.", fv),
            programs.positive_int("min_len", config.min_len, "Shortest toy sequence.", fv),
            programs.positive_int("max_value", config.max_value, "Toy values are integers in "
                                  "0..max_value, divided by max_value.", fv),
            programs.positive_int("n_train", config.n_train, "Toy training sequences.", fv),
            programs.positive_int("n_test", config.n_test, "Toy test sequences.", fv),
        ]
        flags.register_multi_flags_validator(
            ["min_len", "seq_max_len"], lambda f: f["min_len"] <= f["seq_max_len"],
            message="--min_len must not exceed --seq_max_len.", flag_values=fv)
        flags.register_multi_flags_validator(
            ["max_value", "seq_max_len"], lambda f: f["max_value"] >= f["seq_max_len"],
            message="--max_value must be at least --seq_max_len, or a linear run of the longest "
                    "length does not fit in 0..max_value.", flag_values=fv)
        return holders


def toy_data_sets(config):
    """(train, test) ToySequenceData, each from its own stream of `config.seed`."""
    def make(stream, n):
        return toy_data.ToySequenceData(np.random.default_rng([config.seed, stream]), n,
                                        config.seq_max_len, config.min_len, config.max_value)

    return make(0, config.n_train), make(1, config.n_test)


TOY = register(Toy())
