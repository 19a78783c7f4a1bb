"""What an experiment provides, and everything generic built on it.

An experiment is one tutorial program: its configuration (a frozen dataclass whose defaults are
the seed's), its TF1 graph, its Keras 3 twin, its data, and its own flags. Its recurrent part is
a zoo `Block`, so its variables, checkpoint reading and weight conversion in both directions are
the zoo's, written once here. Its other layers (`plain_layers`: by default the seeds' output
layer `logits = features @ W + b`, `graphs.OUTPUT_WEIGHTS` and `graphs.OUTPUT_BIASES`, a Keras
`Dense` named `output`; an embedding) hold the same arrays in both frameworks. `head` says what
the logits are for (`graphs.HEADS`: softmax, sigmoid or regression).

Adding an experiment: a module under `legacy_rnn/experiments/` with one `Experiment` subclass,
registered with `register`, its import in `legacy_rnn/experiments/__init__.py`, a 4-line program
module, flagfiles and a test.
"""
import dataclasses

import numpy as np

from legacy_rnn import lazy
from legacy_rnn.cli import interrupts
from legacy_rnn.experiments import graphs
from legacy_rnn.training import checkpoints
from legacy_rnn.training import loop as training
from legacy_rnn.errors import UserError

# Loaded when a graph or model is built, not at import: the program checks its flags first.
blocks = lazy.module("legacy_rnn.zoo.blocks")

EXPERIMENTS = {}


def register(experiment):
    """Adds an experiment instance to the table every tool reads; returns it."""
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def get(name):
    if name not in EXPERIMENTS:
        raise UserError(f"Unknown experiment {name!r}; choose one of "
                        f"{', '.join(EXPERIMENTS)}.")
    return EXPERIMENTS[name]


@dataclasses.dataclass(frozen=True)
class Data:
    """`train.next_batch(n)` gives batch tuples in the graph's input order; `test` is the tuple
    of test arrays in the same order (labels included); `valid` likewise, if the experiment has
    a validation split (epoch-trained experiments without one validate on `test`)."""
    train: object
    test: tuple
    valid: tuple | None = None


class Experiment:
    name = ""
    summary = ""  # one line for --help and README
    config = None  # the seed's configuration (a frozen dataclass instance)
    train = training.TrainConfig()  # the seed's training settings
    golden = None  # a tiny configuration: golden numbers, the canary, fast tests
    n_classes = 0  # outputs of the logits
    head = "softmax"  # graphs.HEADS
    plain_layer_names = ("output",)  # every Keras layer name `plain_layers` can give

    # --- What each experiment defines ----------------------------------------------------
    def block(self, config):
        """The zoo Block of the recurrent part."""
        raise NotImplementedError

    def input_size(self, config):
        raise NotImplementedError

    def build_graph(self, config):
        """The TF1 training graph (`graphs.Model`)."""
        raise NotImplementedError

    def keras_model(self, config):
        """The Keras 3 twin: the same function as the graph's logits."""
        raise NotImplementedError

    def keras_inputs(self, feeds):
        """The twin's inputs from a tuple of graph feeds (labels included)."""
        raise NotImplementedError

    def load_data(self, config):
        raise NotImplementedError

    def golden_data(self, config):
        """Small offline data for the golden numbers (defaults to `load_data`)."""
        return self.load_data(config)

    def define_flags(self, flag_values=None):
        """Defines the program's own flags on `flag_values` (absl's FLAGS when None), each named
        after a field of `config`; returns their FlagHolders."""
        return []

    def result_line(self, metrics):
        """The last line(s) a program prints on stdout."""
        return f"test_accuracy: {metrics['test_accuracy']:.4f}"

    def checkpoint_configs(self, config, shapes):
        """Configs that may describe a checkpoint holding the variables {name: shape}, tried in
        order (the first whose variables it all holds is read); for experiments with several
        models. The units are read from the shapes afterwards."""
        return [config]

    def parity_config(self, config):
        """`config` with its dropout off, for comparing trainings step by step across
        frameworks (the two draw different masks)."""
        return config

    def output_size(self, config):
        """Values per example of the logits (or predictions)."""
        return self.n_classes

    def resolved(self, config):
        """`config` with defaults that depend on other settings filled in (before building)."""
        return config

    def plain_layers(self, config):
        """{Keras layer name: ((TF1 variable name, shape), ...)}: the layers outside the
        recurrent block whose Keras weights are the TF1 variables as they are, in order."""
        outputs = self.output_size(config)
        return {"output": ((graphs.OUTPUT_WEIGHTS, (self.features(config), outputs)),
                           (graphs.OUTPUT_BIASES, (outputs,)))}

    def random_feeds(self, config, batch, rng):
        """A random batch tuple in the graph's input order (benchmarks, parity tests)."""
        raise NotImplementedError

    def serving_specs(self, config):
        """{input name: tf.TensorSpec} of the serving signature: the graph's placeholders
        (labels aside), batch open."""
        raise NotImplementedError

    def keras_call(self, model, **inputs):
        """The twin's logits for the serving inputs (named as in `serving_specs`)."""
        raise NotImplementedError

    def rnn_layers(self, model):
        """{zoo cell name (`fw_0`, ...): the twin's Keras layer holding that cell's weights}."""
        return {name: model.get_layer(name) for name, _, _ in self.block(self.config).cells()}

    # --- Generic --------------------------------------------------------------------------
    @property
    def metric_name(self):
        """What its evaluation reports beside the loss (graphs.head_ops)."""
        return "mse" if self.head == "regression" else "accuracy"

    def features(self, config):
        return self.block(config).output_size

    def variables(self, config):
        """{TF1 variable name: shape} of every trainable variable of the graph."""
        plain = {name: tuple(shape) for pairs in self.plain_layers(config).values()
                 for name, shape in pairs}
        return {**self.block(config).variables(self.input_size(config)), **plain}

    def with_units(self, config, units):
        return dataclasses.replace(config, n_hidden=units)

    def units(self, config):
        return config.n_hidden

    def to_keras(self, config, tf1):
        """The Keras twin holding the TF1 variables {name: array}."""
        model = self.keras_model(config)
        block = self.block(config)
        layers = self.rnn_layers(model)
        for name, level, prefix in block.cells():
            relative = {k[len(prefix) + 1:]: v for k, v in tf1.items()
                        if k.startswith(prefix + "/")}
            layers[name].set_weights(level.cell.family.to_keras(level.cell, relative))
        for layer, pairs in self.plain_layers(config).items():
            model.get_layer(layer).set_weights([tf1[name] for name, _ in pairs])
        return model

    def keras_arrays(self, model):
        """{zoo cell name or "output": the twin's weights as numpy arrays}."""
        arrays = {name: layer.get_weights() for name, layer in self.rnn_layers(model).items()}
        for layer in self._plain_names(model):
            arrays[layer] = model.get_layer(layer).get_weights()
        return arrays

    def keras_variables(self, model):
        """{zoo cell name or "output": the twin's trainable variables} (for gradients)."""
        variables = {name: layer.trainable_weights
                     for name, layer in self.rnn_layers(model).items()}
        for layer in self._plain_names(model):
            variables[layer] = model.get_layer(layer).trainable_weights
        return variables

    def _plain_names(self, model):
        present = {layer.name for layer in model.layers}
        return [name for name in self.plain_layer_names if name in present]

    def to_tf1(self, config, arrays, gradients=False):
        """TF1 variables {name: array} from `keras_arrays`-style arrays (weights, or gradients
        with `gradients=True`): the inverse of `to_keras`."""
        tf1 = blocks.from_keras(self.block(config), arrays, gradients)
        for layer, pairs in self.plain_layers(config).items():
            for (name, _), array in zip(pairs, arrays[layer]):
                tf1[name] = np.asarray(array)
        return tf1

    def run(self, config, train, data=None, probe_size=0, final_weights=False):
        """Trains and evaluates; `data` overrides reading it. `probe_size`: also return the
        trained model's logits on that many test examples; `final_weights`: the trained
        variables."""
        config = self.resolved(config)
        with interrupts.phase("reading the checkpoint to start from"):
            train, init_map = self._init_from(config, train)
        if data is None:
            with interrupts.phase("loading the data"):
                data = self.load_data(config)
        with interrupts.phase("building the TF1 graph"):
            model = self.build_graph(config)
        test = _head(data.test, config.test_len)
        return training.train_and_evaluate(model, train, data.train, test, init_map,
                                           dataclasses.asdict(config), probe_size, final_weights,
                                           data.valid)


    def _init_from(self, config, train):
        """(train config with the checkpoint prefix resolved, {graph var: checkpoint var})."""
        if not train.init_checkpoint:
            if train.eval_only:
                raise UserError("--eval_only evaluates the weights of --init_checkpoint, and none "
                                "was given. Pass --init_checkpoint=PREFIX (or a --model_dir of a "
                                "run).")
            return train, None
        prefix = checkpoints.resolve_prefix(train.init_checkpoint)
        names, found = checkpoints.checkpoint_map(prefix, self, config, EXPERIMENTS.values())
        if self.units(found) != self.units(config):
            raise UserError(f"{prefix} holds a recurrent layer of {self.units(found)} units, and "
                            f"this run builds {self.units(config)}. Pass "
                            f"--n_hidden={self.units(found)}.")
        if self.variables(found) != self.variables(config):
            differ = {k: v for k, v in dataclasses.asdict(found).items()
                      if getattr(config, k) != v}
            raise UserError(f"{prefix} holds another model than this run builds (it fits "
                            f"{', '.join(f'--{k}={v}' for k, v in differ.items())}). Pass the "
                            "flags of the run that wrote it.")
        return dataclasses.replace(train, init_checkpoint=prefix), names


def _head(arrays, test_len):
    n = len(arrays[0])
    if test_len > n:
        raise UserError(f"--test_len={test_len} is more than the {n} test examples. Use a value "
                        f"up to {n}, or 0 for all of them.")
    return tuple(a[:test_len or n] for a in arrays)
