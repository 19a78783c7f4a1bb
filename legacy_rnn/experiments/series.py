"""`series_rnn`: forecasting the chapter-15 time series of Geron's *Hands-On Machine Learning*
(2nd ed.) with the RNN family, as TF1 graphs beside their Keras 3 twins.

Each model (`MODELS`) is a stack of zoo cells run by `static_rnn` (or `dynamic_rnn`) over the 50
input steps, its last output read as the forecast or fed to a dense layer; MSE loss, Adam, 20
epochs of batch 32 validated on the validation split. The twin is the chapter's Keras model:
`RNN` layers of `SimpleRNNCell` / `LSTMCell` / `GRUCell(reset_after=False)` / `LNSimpleRNNCell`
(what `SimpleRNN`, `LSTM` and `GRU` are; named `fw_K`, `return_sequences` on all but the last),
then `Dense` named `output`. The program also reports the
chapter's two baselines: naive (the last value) and linear (a dense layer over the inputs).
"""
import dataclasses
import re

import numpy as np
from absl import flags, logging

from legacy_rnn import lazy
from legacy_rnn.cli import interrupts
from legacy_rnn.cli import programs
from legacy_rnn.data import batches
from legacy_rnn.data import series as series_data
from legacy_rnn.experiments import graphs
from legacy_rnn.training import loop as training
from legacy_rnn.experiments.base import Data, Experiment, register

# Loaded when a graph or model is built, not at import: the program checks its flags first.
keras = lazy.module("keras")
tf = lazy.module("tensorflow")
zoo = lazy.module("legacy_rnn.zoo")
blocks = lazy.module("legacy_rnn.zoo.blocks")


@dataclasses.dataclass(frozen=True)
class SeriesModel:
    """One of the chapter's models: its cell, the units of each level (`None`: `n_hidden`;
    `"horizon"`: one per forecast step, for stacks whose last cell is the forecast), whether a
    dense layer reads the last output, and the learning rate its notebook used."""
    cell: str
    levels: tuple
    dense: bool
    learning_rate: float = 0.001
    summary: str = ""


MODELS = {
    "simple": SeriesModel("basic_rnn", ("horizon",), False, 0.005, "SimpleRNN(1)"),
    "deep": SeriesModel("basic_rnn", (None, None, "horizon"), False,
                        summary="SimpleRNN(20) x2 with sequences, then SimpleRNN(1)"),
    "deep_dense": SeriesModel("basic_rnn", (None, None), True,
                              summary="SimpleRNN(20) x2, then Dense"),
    "ln": SeriesModel("ln_basic_rnn", (None, None), True,
                      summary="two layer-normalised SimpleRNNs of 20, then Dense"),
    "lstm": SeriesModel("basic_lstm", (None, None), True, summary="LSTM(20) x2, then Dense"),
    "gru": SeriesModel("gru", (None, None), True, summary="GRU(20) x2, then Dense"),
}


@dataclasses.dataclass(frozen=True)
class SeriesConfig:
    """The chapter's forecasting setup (defaults: its deep RNN, one step ahead)."""
    model: str = "deep"
    n_hidden: int = 20
    horizon: int = 1
    rnn: str = "static"
    learning_rate: float | None = None  # None: the model's (MODELS)
    seed: int = 42
    steps: int = 50
    n_train: int = 7000
    n_valid: int = 2000
    n_test: int = 1000
    baselines: bool = True
    test_len: int = 0  # 0: the whole test split


class Series(Experiment):
    name = "series_rnn"
    summary = "the RNN family forecasting Geron's chapter-15 time series (MSE)"
    config = SeriesConfig()
    train = training.TrainConfig(batch_size=32, epochs=20, display_step=100,
                                 checkpoint_steps=2000)
    golden = SeriesConfig(model="deep_dense", n_hidden=4, steps=12, n_train=64, n_valid=16,
                          n_test=16, baselines=False)
    head = "regression"
    n_classes = 1

    def block(self, config):
        spec = MODELS[config.model]
        units = [config.horizon if u == "horizon" else config.n_hidden for u in spec.levels]
        return zoo.Block([zoo.CellSpec.make(spec.cell, u) for u in units], "forward",
                         config.rnn)

    def input_size(self, config):
        return 1

    def resolved(self, config):
        if config.learning_rate is None:
            return dataclasses.replace(config, learning_rate=MODELS[config.model].learning_rate)
        return config

    def units(self, config):
        return self.block(config).levels[0].cell.units

    def with_units(self, config, units):
        if MODELS[config.model].levels[0] == "horizon":
            return config
        return dataclasses.replace(config, n_hidden=units)

    def output_size(self, config):
        return config.horizon

    def rnn_layers(self, model):
        return {layer.name: layer for layer in model.layers
                if re.fullmatch(r"fw_\d+", layer.name)}

    def checkpoint_configs(self, config, shapes):
        """Each model, its horizon read from the output layer or the last cell's units."""
        configs = []
        for name, spec in MODELS.items():
            candidate = dataclasses.replace(config, model=name)
            if spec.dense:
                horizon = shapes.get(graphs.OUTPUT_BIASES, (None,))[0]
            else:
                _, level, prefix = self.block(candidate).cells()[-1]
                horizon = level.cell.family.units_from(
                    {k[len(prefix) + 1:]: v for k, v in shapes.items()
                     if k.startswith(prefix + "/")})
            if horizon:
                configs.append(dataclasses.replace(candidate, horizon=int(horizon)))
        return configs

    def plain_layers(self, config):
        if not MODELS[config.model].dense:
            return {}
        return super().plain_layers(config)

    def build_graph(self, config, optimizer="adam"):
        config = self.resolved(config)
        graph = graphs.new_graph(config.seed)
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [None, config.steps, 1], name="series")
            y = tf.compat.v1.placeholder(tf.float32, [None, config.horizon], name="targets")
            outputs, _ = zoo.tf1_block(self.block(config), x, stacked=False)
            features = graphs.last_output(outputs)
            predictions = (graphs.dense(features, config.horizon, init="glorot")
                           if MODELS[config.model].dense else features)
            return graphs.trained(graph, (x, y), predictions, y, optimizer, config.learning_rate,
                                  head="regression")

    def keras_model(self, config):
        """Input `series [b, time, 1]`; any time length."""
        x = keras.Input((None, 1), name="series")
        h, levels = x, self.block(config).levels
        for k, level in enumerate(levels):
            h = blocks.keras_level(level, f"fw_{k}", return_sequences=k < len(levels) - 1)(h)
        if MODELS[config.model].dense:
            h = keras.layers.Dense(config.horizon, name="output")(h)
        return keras.Model(x, h, name=f"{self.name}_{config.model}")

    def serving_specs(self, config):
        return {"series": tf.TensorSpec([None, config.steps, 1], tf.float32, name="series")}

    def keras_call(self, model, series):
        return model(series)

    def keras_inputs(self, feeds):
        return feeds[0]

    def random_feeds(self, config, batch, rng):
        x = series_data.generate_time_series(np.random.RandomState(rng.integers(2**31)),
                                             batch, config.steps + config.horizon)
        return x[:, :config.steps], x[:, config.steps:, 0]

    def load_data(self, config):
        splits = series_data.make_splits(config.seed, config.n_train, config.n_valid,
                                         config.n_test, config.steps, config.horizon)

        return Data(batches.EpochBatches(splits.train, np.random.default_rng([config.seed, 0])),
                    splits.test, splits.valid)

    def result_line(self, metrics):
        lines = [f"{name}_{split}_mse: {value:.6f}"
                 for name, scores in metrics.get("baselines", {}).items()
                 for split, value in scores.items()]
        return "\n".join([*lines, f"valid_mse: {metrics['valid_mse']:.6f}",
                          f"test_mse: {metrics['test_mse']:.6f}"])

    def run(self, config, train, data=None, probe_size=0, final_weights=False):
        """As every experiment's, then (with `config.baselines`, when training) the chapter's
        naive and linear baselines on the same splits, under `result["baselines"]`."""
        if data is None:
            with interrupts.phase("loading the data"):
                data = self.load_data(config)
        result = super().run(config, train, data, probe_size, final_weights)
        if config.baselines and not train.eval_only:
            with interrupts.phase("training the linear baseline"):
                result["baselines"] = baselines(self.resolved(config), train, data)
        return result

    def define_flags(self, flag_values=flags.FLAGS):
        fv, config = flag_values, self.config
        return [
            flags.DEFINE_enum("model", config.model, list(MODELS), "; ".join(
                f"{k}: {m.summary}" for k, m in MODELS.items()) + ".", flag_values=fv),
            programs.positive_int("n_hidden", config.n_hidden, "Units of each hidden level.",
                                  fv),
            programs.positive_int("horizon", config.horizon, "Steps forecast at once (the "
                                  "chapter: 1, and 10 sequence-to-vector).", fv),
            flags.DEFINE_enum("rnn", config.rnn, graphs.RNN_APIS, "static: static_rnn; dynamic: "
                              "dynamic_rnn. Same function, same variables.", flag_values=fv),
            programs.positive_int("steps", config.steps, "Input steps of each series.", fv),
            programs.positive_int("n_train", config.n_train, "Training series.", fv),
            programs.positive_int("n_valid", config.n_valid, "Validation series.", fv),
            programs.positive_int("n_test", config.n_test, "Test series.", fv),
            flags.DEFINE_bool("baselines", config.baselines, "After training: also report the "
                              "naive and the linear baselines on the same splits.",
                              flag_values=fv),
        ]


def linear_graph(config):
    """The chapter's linear baseline: `Flatten`, then `Dense(horizon)`, MSE, Adam 0.001."""
    graph = graphs.new_graph(config.seed)
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, config.steps, 1], name="series")
        y = tf.compat.v1.placeholder(tf.float32, [None, config.horizon], name="targets")
        predictions = graphs.dense(tf.reshape(x, [-1, config.steps]), config.horizon, "glorot")
        return graphs.trained(graph, (x, y), predictions, y, "adam", 0.001, head="regression")


def baselines(config, train, data):
    """{"naive" / "linear": {"valid" / "test": mse}} on `data`'s splits (the linear model trained
    as the RNN was: same epochs and batch size, its own batch order)."""
    logging.info("baselines: naive (last value) and linear (dense over the %d inputs)",
                 config.steps)
    linear = training.train_and_evaluate(
        linear_graph(config),
        training.TrainConfig(batch_size=train.batch_size, epochs=train.epochs or 1,
                             display_step=10**9),
        batches.EpochBatches(data.train.arrays, np.random.default_rng([config.seed, 1])),
        data.test, valid_inputs=data.valid)
    return {"naive": {"valid": series_data.naive_mse(*data.valid),
                      "test": series_data.naive_mse(*data.test)},
            "linear": {"valid": linear["valid_mse"], "test": linear["test_mse"]}}


SERIES = register(Series())
