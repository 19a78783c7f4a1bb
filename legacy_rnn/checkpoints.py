"""Reading tf.compat.v1 checkpoints of the three models, this project's or the tutorials' own.

The tutorial scripts left the output layer unnamed (`Variable` = W, created first, and
`Variable_1` = b); this project names them `output/weights` and `output/biases`. Both are accepted.
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf

from legacy_rnn.errors import UserError
from legacy_rnn.graphs import OUTPUT_BIASES, OUTPUT_WEIGHTS

LSTM_VARIABLES = ("rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias")
BILSTM_VARIABLES = tuple(f"bidirectional_rnn/{d}/basic_lstm_cell/{w}"
                         for d in ("fw", "bw") for w in ("kernel", "bias"))
OUTPUT_VARIABLES = (OUTPUT_WEIGHTS, OUTPUT_BIASES)
MODEL_VARIABLES = {
    "mnist_rnn": LSTM_VARIABLES + OUTPUT_VARIABLES,
    "mnist_birnn": BILSTM_VARIABLES + OUTPUT_VARIABLES,
    "toy_dynamic_rnn": LSTM_VARIABLES + OUTPUT_VARIABLES,
}
TUTORIAL_NAMES = {OUTPUT_WEIGHTS: "Variable", OUTPUT_BIASES: "Variable_1"}
# (input size per step, classes) each model's data has.
MODEL_IO = {"mnist_rnn": (28, 10), "mnist_birnn": (28, 10), "toy_dynamic_rnn": (1, 2)}


@dataclasses.dataclass(frozen=True)
class ModelShape:
    n_hidden: int
    n_input: int
    n_classes: int


def resolve_prefix(path):
    """A checkpoint prefix from a prefix or a directory holding a `checkpoint` file."""
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise UserError(f"{path} is a directory without a checkpoint in it. Pass a checkpoint "
                            "prefix (e.g. DIR/model.ckpt-781) or a --model_dir a run wrote.")
        return latest
    return path


def _list_variables(prefix):
    try:
        return dict(tf.train.list_variables(prefix))
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"Cannot read a checkpoint at {prefix} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0]}). Pass the prefix of a tf.compat.v1 checkpoint "
                        "(the path before .index / .data-00000-of-00001), or its directory.") from None


def _name_map(available, model_name):
    """{model variable: checkpoint variable} for the names present; tutorial names accepted."""
    found = {}
    for name in MODEL_VARIABLES[model_name]:
        for candidate in (name, TUTORIAL_NAMES.get(name)):
            if candidate in available:
                found[name] = candidate
                break
    return found


def checkpoint_map(prefix, model_name):
    """({model variable: checkpoint variable}, ModelShape) of the checkpoint at `prefix`.

    Raises UserError naming what is missing or mis-shaped, and the model the checkpoint looks
    like when it is another one.
    """
    available = _list_variables(prefix)
    found = _name_map(available, model_name)
    missing = [n for n in MODEL_VARIABLES[model_name] if n not in found]
    if missing:
        # Models with other variable names whose variables are all there (mnist_rnn and the toy
        # share names; their shapes tell them apart later).
        others = [m for m, names in MODEL_VARIABLES.items()
                  if names != MODEL_VARIABLES[model_name]
                  and len(_name_map(available, m)) == len(names)]
        hint = (f" It holds the variables of {' / '.join(others)}: pass that model instead."
                if others else
                f" It holds: {', '.join(sorted(available)[:12])}"
                f"{' ...' if len(available) > 12 else ''}.")
        raise UserError(f"{prefix} is not a {model_name} checkpoint: it has no "
                        f"{', '.join(missing)}.{hint}")
    shapes = {name: tuple(available[ckpt]) for name, ckpt in found.items()}
    return found, infer_shape(model_name, shapes, source=prefix)


def infer_shape(model_name, shapes, source="the weights"):
    """ModelShape from `{model variable: shape}` (or arrays); UserError if they do not fit."""
    shapes = {name: tuple(np.shape(v)) if not isinstance(v, tuple) else v
              for name, v in shapes.items()}
    cell_names = BILSTM_VARIABLES if model_name == "mnist_birnn" else LSTM_VARIABLES
    kernel, bias = shapes[cell_names[0]], shapes[cell_names[1]]
    problems = []
    if len(bias) != 1 or bias[0] % 4:
        problems.append(f"{cell_names[1]} has shape {list(bias)}, not [4 * n_hidden]")
        n_hidden = n_input = 0
    else:
        n_hidden = bias[0] // 4
        n_input = kernel[0] - n_hidden if len(kernel) == 2 else 0
        if len(kernel) != 2 or kernel[1] != 4 * n_hidden or n_input <= 0:
            problems.append(f"{cell_names[0]} has shape {list(kernel)}, not "
                            f"[input + {n_hidden}, {4 * n_hidden}] for an LSTM of {n_hidden} units")
    for other in range(2, len(cell_names), 2):
        for name, first in ((cell_names[other], kernel), (cell_names[other + 1], bias)):
            if shapes[name] != first:
                problems.append(f"{name} has shape {list(shapes[name])}, the forward one "
                                f"{list(first)}")
    want_input, want_classes = MODEL_IO[model_name]
    if n_input and n_input != want_input:
        problems.append(f"the cell reads {n_input} inputs per step, {model_name} feeds {want_input}")
    features = n_hidden * (2 if model_name == "mnist_birnn" else 1)
    if shapes[OUTPUT_WEIGHTS] != (features, want_classes):
        problems.append(f"the output weights have shape {list(shapes[OUTPUT_WEIGHTS])}, "
                        f"{model_name} needs [{features}, {want_classes}]")
    if shapes[OUTPUT_BIASES] != (want_classes,):
        problems.append(f"the output biases have shape {list(shapes[OUTPUT_BIASES])}, "
                        f"{model_name} needs [{want_classes}]")
    if problems:
        raise UserError(f"{source} does not fit {model_name}: {'; '.join(problems)}.")
    return ModelShape(n_hidden, n_input, want_classes)


def read_weights(prefix, model_name):
    """({model variable: float32 array}, ModelShape) from the checkpoint at `prefix`."""
    prefix = resolve_prefix(prefix)
    names, shape = checkpoint_map(prefix, model_name)
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(ckpt) for name, ckpt in names.items()}, shape
