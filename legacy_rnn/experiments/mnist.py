"""MNIST row by row: `mnist_rnn` (BasicLSTMCell + static_rnn) and `mnist_birnn` (two
BasicLSTMCells + static_bidirectional_rnn), the TF1 graph beside its Keras 3 twin.

TF1: 28 rows of 28 pixels, `outputs[-1] @ W + b`, softmax cross-entropy, Adam. The twin:
`LSTM(U)` then `Dense(10)`; for the BiLSTM, `outputs[-1]` pairs the forward LSTM after the whole
sequence with the backward LSTM after only the LAST row, so the twin keeps the backward sequence
(`Bidirectional(LSTM(U, return_sequences=True))`) and takes its last step. A plain
`Bidirectional(LSTM(U))` returns the backward LSTM after all 28 rows: a different model
(tests/test_parity.py proves the difference).
"""
import dataclasses

import numpy as np
from absl import flags

from legacy_rnn import lazy
from legacy_rnn.cli import programs
from legacy_rnn.data import mnist as mnist_data
from legacy_rnn.experiments import graphs
from legacy_rnn.experiments.base import Data, Experiment, register

# Loaded when a graph or model is built, not at import: the program checks its flags first.
keras = lazy.module("keras")
tf = lazy.module("tensorflow")
zoo = lazy.module("legacy_rnn.zoo")

STEPS = ROW = 28
CLASSES = 10


@dataclasses.dataclass(frozen=True)
class MnistConfig:
    """The MNIST row-by-row classifier (defaults: the seed's)."""
    n_hidden: int = 512
    rnn: str = "static"
    learning_rate: float = 0.001
    seed: int = 0
    dataset: str = "mnist"
    data_dir: str | None = None
    tfds_data_dir: str | None = None
    validation_size: int = mnist_data.VALIDATION_SIZE
    test_len: int = 0  # 0: the whole test split


class Mnist(Experiment):
    config = MnistConfig()
    golden = MnistConfig(n_hidden=8, validation_size=0)
    n_classes = CLASSES

    def __init__(self, bidirectional):
        self.bidirectional = bidirectional
        self.name = "mnist_birnn" if bidirectional else "mnist_rnn"
        self.summary = ("two BasicLSTMCells + static_bidirectional_rnn over MNIST rows"
                        if bidirectional else "BasicLSTMCell + static_rnn over MNIST rows")

    def block(self, config):
        return zoo.Block([zoo.CellSpec.make("basic_lstm", config.n_hidden)],
                         "bidirectional" if self.bidirectional else "forward", config.rnn)

    def input_size(self, config):
        return ROW

    def build_graph(self, config, optimizer="adam", n_steps=STEPS, n_input=ROW):
        graph = graphs.new_graph(config.seed)
        with graph.as_default():
            images = tf.compat.v1.placeholder(tf.float32, [None, n_steps * n_input],
                                              name="images")
            labels = tf.compat.v1.placeholder(tf.float32, [None, CLASSES], name="labels")
            rows = tf.reshape(images, [-1, n_steps, n_input])
            outputs, _ = zoo.tf1_block(self.block(config), rows, stacked=False)
            return graphs.classifier(graph, (images, labels), graphs.last_output(outputs), labels,
                                     optimizer, config.learning_rate)

    def keras_model(self, config, n_steps=STEPS, n_input=ROW):
        rows = keras.Input((n_steps, n_input), name="images")
        if self.bidirectional:
            sequence = keras.layers.Bidirectional(
                keras.layers.LSTM(config.n_hidden, return_sequences=True),
                name="bidirectional")(rows)
            last = keras.layers.Cropping1D((n_steps - 1, 0), name="last_step")(sequence)
            features = keras.layers.Flatten(name="features")(last)
        else:
            features = keras.layers.LSTM(config.n_hidden, name="lstm")(rows)
        logits = keras.layers.Dense(CLASSES, name="output")(features)
        return keras.Model(rows, logits, name=self.name)

    def rnn_layers(self, model):
        if self.bidirectional:
            bidirectional = model.get_layer("bidirectional")
            return {"fw_0": bidirectional.forward_layer, "bw_0": bidirectional.backward_layer}
        return {"fw_0": model.get_layer("lstm")}

    def serving_specs(self, config):
        return {"images": tf.TensorSpec([None, STEPS * ROW], tf.float32, name="images")}

    def keras_call(self, model, images):
        return model(tf.reshape(images, [-1, STEPS, ROW]))

    def keras_inputs(self, feeds):
        images = feeds[0]
        return images.reshape(len(images), STEPS, ROW)

    def random_feeds(self, config, batch, rng, n_steps=STEPS, n_input=ROW):
        images = rng.random((batch, n_steps * n_input)).astype(np.float32)
        return images, np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, batch)]

    def load_data(self, config):
        data = mnist_data.read_data_sets(config.dataset, config.data_dir, config.tfds_data_dir,
                                         config.seed, config.validation_size)

        return Data(data.train, (data.test.images, data.test.labels))

    def golden_data(self, config):
        data = synthetic_mnist(config.seed)
        return Data(data.train, (data.test.images, data.test.labels))

    def define_flags(self, flag_values=flags.FLAGS):
        fv, config = flag_values, self.config
        holders = [
            programs.positive_int("n_hidden", config.n_hidden, "LSTM units (per direction).", fv),
            flags.DEFINE_enum("rnn", config.rnn, graphs.RNN_APIS, "static: static_rnn / "
                              "static_bidirectional_rnn (the seeds); dynamic: dynamic_rnn / "
                              "bidirectional_dynamic_rnn. Same function, same variables.",
                              flag_values=fv),
            flags.DEFINE_enum("dataset", config.dataset, mnist_data.DATASETS,
                              "Which MNIST-layout data set to train on.", flag_values=fv),
            flags.DEFINE_string("data_dir", None, "Directory of the four MNIST IDX files "
                                "(gzipped or not). If unset, the data comes from "
                                "tensorflow-datasets.", flag_values=fv),
            flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data directory (its "
                                "default if unset).", flag_values=fv),
            programs.non_negative_int("validation_size", config.validation_size, "Training "
                                      "images held out as the validation split, as TF1's "
                                      "read_data_sets did.", fv),
        ]
        flags.register_multi_flags_validator(
            ["data_dir", "tfds_data_dir"], lambda f: not (f["data_dir"] and f["tfds_data_dir"]),
            message="--data_dir (IDX files) and --tfds_data_dir (tensorflow-datasets) name two "
                    "different data sources; pass one of them.", flag_values=fv)
        return holders


def synthetic_mnist(seed, n_train=160, n_test=40):
    """MNIST-shaped DataSets whose classes differ (a template per class plus noise): offline
    data for the golden numbers and tests."""
    rng = np.random.default_rng([seed, 99])
    templates = rng.random((10, 28, 28))

    def split(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        noisy = 0.6 * templates[labels] + 0.4 * rng.random((n, 28, 28))
        return (noisy * 255).astype(np.uint8), labels

    (train_x, train_y), (test_x, test_y) = split(n_train), split(n_test)
    rngs = [np.random.default_rng([seed, i]) for i in range(3)]
    return mnist_data.DataSets(
        train=mnist_data.DataSet(train_x, train_y, rngs[0]),
        validation=mnist_data.DataSet(train_x[:0], train_y[:0], rngs[1]),
        test=mnist_data.DataSet(test_x, test_y, rngs[2]))


MNIST_RNN = register(Mnist(bidirectional=False))
MNIST_BIRNN = register(Mnist(bidirectional=True))
