"""`imdb_rnn`: the documents' IMDB sentiment model, a TF1 graph beside its Keras 3 twin.

The documents (TF2 Keras): `imdb.load_data(num_words=10000)`, reviews padded to 80 words,
`Embedding(10000, 100)`, two `SimpleRNNCell(64, dropout=0.5)` unrolled over the 80 steps,
`Dense(1)`, sigmoid, binary cross-entropy, Adam 0.001, batches of 128 (`drop_remainder`),
4 epochs validated on the test split; seeds 22.

TF1: an `embedding` variable and `tf.nn.embedding_lookup`, a `MultiRNNCell` of two
`BasicRNNCell(64)` each in `DropoutWrapper(input_keep_prob=0.5)` switched on by the `training`
placeholder (False by default: evaluation and serving run without dropout), `static_rnn`,
`output/weights` and `output/biases`, `sigmoid_cross_entropy_with_logits`.

The twin: `Embedding` named `embedding`; per level a `Dropout(0.5)` (TF1's per-step masks) and
an `RNN(SimpleRNNCell(64))` (what `SimpleRNN` is) named `fw_K`; `Dense(1)` named `output`.
"""
import dataclasses

import numpy as np
from absl import flags

from legacy_rnn import lazy
from legacy_rnn.cli import interrupts
from legacy_rnn.cli import programs
from legacy_rnn.data import batches
from legacy_rnn.data import imdb as imdb_data
from legacy_rnn.experiments import graphs
from legacy_rnn.training import loop as training
from legacy_rnn.experiments.base import Data, Experiment, register

# Loaded when a graph or model is built, not at import: the program checks its flags first.
keras = lazy.module("keras")
tf = lazy.module("tensorflow")
zoo = lazy.module("legacy_rnn.zoo")
blocks = lazy.module("legacy_rnn.zoo.blocks")


@dataclasses.dataclass(frozen=True)
class ImdbConfig:
    """The documents' IMDB model (defaults: theirs)."""
    n_hidden: int = 64
    num_words: int = 10000
    maxlen: int = 80
    embedding_size: int = 100
    keep_prob: float = 0.5
    rnn: str = "static"
    learning_rate: float = 0.001
    seed: int = 22
    data_path: str | None = None
    test_len: int = 0  # 0: the whole test split (full batches, as the documents' drop_remainder)


class Imdb(Experiment):
    name = "imdb_rnn"
    summary = "embedding + two dropout-wrapped BasicRNNCells + static_rnn over IMDB reviews"
    config = ImdbConfig()
    train = training.TrainConfig(batch_size=128, epochs=4, display_step=50,
                                 checkpoint_steps=200)
    golden = ImdbConfig(n_hidden=8, num_words=1100, maxlen=10, embedding_size=6)
    head = "sigmoid"
    n_classes = 1
    plain_layer_names = ("embedding", "output")

    def block(self, config):
        level = zoo.Level(zoo.CellSpec.make("basic_rnn", config.n_hidden),
                          blocks.Dropout(input_keep_prob=config.keep_prob))
        return zoo.Block([level, level], "forward", config.rnn)

    def input_size(self, config):
        return config.embedding_size

    def parity_config(self, config):
        return dataclasses.replace(config, keep_prob=1.0)

    def checkpoint_configs(self, config, shapes):
        """The vocabulary and embedding size are the embedding's shape."""
        if "embedding" not in shapes or len(shapes["embedding"]) != 2:
            return [config]
        num_words, size = shapes["embedding"]
        return [dataclasses.replace(config, num_words=int(num_words), embedding_size=int(size))]

    def plain_layers(self, config):
        return {"embedding": (("embedding", (config.num_words, config.embedding_size)),),
                "output": ((graphs.OUTPUT_WEIGHTS, (config.n_hidden, 1)),
                           (graphs.OUTPUT_BIASES, (1,)))}

    def build_graph(self, config, optimizer="adam"):
        graph = graphs.new_graph(config.seed)
        with graph.as_default():
            tokens = tf.compat.v1.placeholder(tf.int32, [None, config.maxlen], name="tokens")
            labels = tf.compat.v1.placeholder(tf.float32, [None], name="labels")
            training_on = tf.compat.v1.placeholder_with_default(False, [], name="training")
            # Keras Embedding's initializer: uniform in [-0.05, 0.05].
            embedding = tf.compat.v1.get_variable(
                "embedding", [config.num_words, config.embedding_size],
                initializer=tf.compat.v1.random_uniform_initializer(-0.05, 0.05))
            embedded = tf.nn.embedding_lookup(embedding, tokens)
            outputs, _ = zoo.tf1_block(self.block(config), embedded, training=training_on,
                                       stacked=False)
            logits = graphs.dense(graphs.last_output(outputs), 1, init="glorot")
            return graphs.trained(graph, (tokens, labels), logits, labels, optimizer,
                                  config.learning_rate, head="sigmoid", training=training_on)

    def keras_model(self, config):
        """Input `tokens [b, time]` int32 (any length); output the logit `[b, 1]`."""
        tokens = keras.Input((None,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(config.num_words, config.embedding_size,
                                   name="embedding")(tokens)
        levels = self.block(config).levels
        for k, level in enumerate(levels):
            x = keras.layers.Dropout(1.0 - config.keep_prob, name=f"fw_{k}_input_dropout")(x)
            x = blocks.keras_level(level, f"fw_{k}", return_sequences=k < len(levels) - 1)(x)
        logits = keras.layers.Dense(1, name="output")(x)
        return keras.Model(tokens, logits, name=self.name)

    def serving_specs(self, config):
        return {"tokens": tf.TensorSpec([None, config.maxlen], tf.int32, name="tokens")}

    def keras_call(self, model, tokens):
        return model(tokens)

    def keras_inputs(self, feeds):
        return feeds[0]

    def random_feeds(self, config, batch, rng):
        tokens = rng.integers(0, config.num_words, (batch, config.maxlen)).astype(np.int32)
        tokens[::3, :config.maxlen // 2] = 0  # padded reviews
        return tokens, rng.integers(0, 2, batch).astype(np.float32)

    def load_data(self, config):
        path = imdb_data.locate(config.data_path)
        (x_train, y_train), (x_test, y_test) = imdb_data.load_data(path, config.num_words)
        return self.arrays_to_data(config, x_train, y_train, x_test, y_test)

    def arrays_to_data(self, config, x_train, y_train, x_test, y_test):
        train = (imdb_data.pad(x_train, config.maxlen), np.asarray(y_train, np.float32))
        test = (imdb_data.pad(x_test, config.maxlen), np.asarray(y_test, np.float32))
        return Data(batches.EpochBatches(train, np.random.default_rng([config.seed, 0]),
                                         drop_remainder=True), test)


    def run(self, config, train, data=None, probe_size=0, final_weights=False):
        """As every experiment's, on the full batches of the test split only (the documents
        batch it with `drop_remainder=True` too)."""
        if data is None:
            with interrupts.phase("loading the data"):
                data = self.load_data(config)
        n = len(data.test[0])
        full = n // train.batch_size * train.batch_size or n
        data = dataclasses.replace(data, test=tuple(a[:full] for a in data.test))
        return super().run(config, train, data, probe_size, final_weights)

    def golden_data(self, config):
        x_train, y_train = imdb_data.synthetic_reviews([config.seed, 1], 96)
        x_test, y_test = imdb_data.synthetic_reviews([config.seed, 2], 40)
        (x_train, y_train), (x_test, y_test) = imdb_data.as_keras_loads(
            {"x_train": imdb_data.ragged(x_train), "y_train": y_train,
             "x_test": imdb_data.ragged(x_test), "y_test": y_test}, config.num_words)
        return self.arrays_to_data(config, x_train, y_train, x_test, y_test)

    def define_flags(self, flag_values=flags.FLAGS):
        fv, config = flag_values, self.config
        holders = [
            programs.positive_int("n_hidden", config.n_hidden, "Units of each SimpleRNN cell.",
                                  fv),
            flags.DEFINE_integer("num_words", config.num_words, "Vocabulary: the most frequent "
                                 "words kept (load_data's num_words); the others become 2.",
                                 flag_values=fv),
            programs.positive_int("maxlen", config.maxlen, "Words per review after padding / "
                                  "truncating (the last ones are kept).", fv),
            programs.positive_int("embedding_size", config.embedding_size, "Embedding size.", fv),
            flags.DEFINE_float("keep_prob", config.keep_prob, "DropoutWrapper input_keep_prob "
                               "of each cell while training (1 - Keras's dropout).",
                               flag_values=fv),
            flags.DEFINE_enum("rnn", config.rnn, graphs.RNN_APIS, "static: static_rnn (as the "
                              "documents' unrolled RNN); dynamic: dynamic_rnn. Same function, "
                              "same variables.", flag_values=fv),
            flags.DEFINE_string("data_path", None, "A local imdb.npz (Keras's file). If unset: "
                                "Keras's cached copy, else downloaded as Keras does.",
                                flag_values=fv),
        ]
        # Ids 0 (padding), 1 (start) and 2 (out of vocabulary) are always used: the embedding
        # needs at least those three rows.
        flags.register_validator("num_words", lambda v: v >= 3, message="--num_words must be "
                                 "3 or more: ids 0 (padding), 1 (review start) and 2 (a word "
                                 "out of the vocabulary) are always in the data.", flag_values=fv)
        flags.register_validator("keep_prob", lambda v: 0 < v <= 1,
                                 message="--keep_prob must be in (0, 1].", flag_values=fv)
        return holders


IMDB = register(Imdb())
