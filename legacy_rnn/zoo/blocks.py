"""Recurrent blocks: a stack of zoo cells run by one TF1 driver, and the Keras 3 block that
computes the same function. The drivers know nothing about which cells they run.

A `Block` is what one call of a TF1 driver builds:

| direction | TF1 drivers (static / dynamic) | variables, under `scope` (default in brackets) |
|---|---|---|
| forward | `static_rnn` / `dynamic_rnn` | `[rnn]/<cell>/...`; a stack: `[rnn]/multi_rnn_cell/cell_K/<cell>/...` |
| bidirectional | `static_bidirectional_rnn` / `bidirectional_dynamic_rnn` | `[bidirectional_rnn]/{fw,bw}/<as forward>` |
| stack_bidirectional | `stack_bidirectional_rnn` / `stack_bidirectional_dynamic_rnn` (tf.contrib, reproduced here) | static: `[stack_bidirectional_rnn]/cell_K/{fw,bw}/<cell>/...`; dynamic: `[stack_bidirectional_rnn]/cell_K/bidirectional_rnn/{fw,bw}/<cell>/...` |

`<cell>` is the cell's own scope (`basic_lstm_cell`, `lstm_cell`, `gru_cell`, `basic_rnn_cell`,
`layer_norm_basic_rnn_cell`); DropoutWrapper and ResidualWrapper add none. A stack level wraps its
cell as GNMT did: `ResidualWrapper(DropoutWrapper(cell))`.

The Keras twin (`keras_block`) takes `[x [batch, time, input], seqlen [batch]]` and returns the
output sequence `[batch, time, output]` as the TF1 driver does from a zero initial state with that
`sequence_length`: zeros past each length, forward and backward concatenated. Each level is one
`keras.layers.RNN` named `fw_K` / `bw_K`; a TF1 stack (`MultiRNNCell`) becomes stacked layers with
`return_sequences=True`, and a backward half runs forward over the sequence reversed within its
length and is reversed back, exactly as TF1 does it.
"""
import contextlib
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.errors import UserError
from legacy_rnn.zoo.cells import CellSpec

DRIVERS = ("static", "dynamic")
DIRECTIONS = ("forward", "bidirectional", "stack_bidirectional")
DEFAULT_SCOPE = {"forward": "rnn", "bidirectional": "bidirectional_rnn",
                 "stack_bidirectional": "stack_bidirectional_rnn"}


@dataclasses.dataclass(frozen=True)
class Dropout:
    """TF1 `DropoutWrapper` settings. TF1 keeps with probability `keep_prob` (Keras drops with
    `rate = 1 - keep_prob`), scaling what it keeps by `1 / keep_prob`. Without
    `variational_recurrent`, a new mask per step and per example; with it, one mask of shape
    `[1, size]` for the whole batch and every step of a `Session.run`."""
    input_keep_prob: float = 1.0
    output_keep_prob: float = 1.0
    state_keep_prob: float = 1.0
    variational_recurrent: bool = False


@dataclasses.dataclass(frozen=True)
class Level:
    """One level of a stack: a cell, its wrappers, and its variable scope when the code named the
    cell (`BasicLSTMCell(U, name="encoder_cell")`) rather than letting TF1 name it."""
    cell: CellSpec
    dropout: Dropout | None = None
    residual: bool = False
    name: str | None = None

    @property
    def scope(self):
        return self.name or self.cell.family.scope


@dataclasses.dataclass(frozen=True)
class Block:
    levels: tuple  # Levels (or CellSpecs), bottom first; for bidirectional ones, the forward half
    direction: str = "forward"
    driver: str = "dynamic"
    backward: tuple | None = None  # the backward half's levels, when they differ
    scope: str | None = None  # variable-name prefix up to the driver's scope (DEFAULT_SCOPE)

    def __post_init__(self):
        object.__setattr__(self, "levels", _levels(self.levels))
        if self.backward is not None:
            object.__setattr__(self, "backward", _levels(self.backward))
        if self.direction not in DIRECTIONS:
            raise UserError(f"direction {self.direction!r}: one of {', '.join(DIRECTIONS)}.")
        if self.driver not in DRIVERS:
            raise UserError(f"driver {self.driver!r}: one of {', '.join(DRIVERS)}.")
        if not self.levels:
            raise UserError("A block needs at least one cell.")
        if self.direction == "forward" and self.backward is not None:
            raise UserError("A forward block has no backward cells.")
        if self.direction != "forward" and len(self.backward_levels) != len(self.levels):
            raise UserError(f"{len(self.levels)} forward and {len(self.backward_levels)} backward "
                            "levels: TF1's bidirectional drivers pair them one to one.")

    @property
    def backward_levels(self):
        if self.direction == "forward":
            return ()
        return self.levels if self.backward is None else self.backward

    @property
    def prefix(self):
        return DEFAULT_SCOPE[self.direction] if self.scope is None else self.scope

    @property
    def output_size(self):
        size = self.levels[-1].cell.output_size
        return size + self.backward_levels[-1].cell.output_size if self.backward_levels else size

    def cells(self):
        """[(keras layer name, Level, TF1 variable prefix of its cell)], bottom level first."""
        def path(*parts):
            return "/".join(part for part in parts if part)

        p = self.prefix
        if self.direction == "stack_bidirectional":
            inner = "bidirectional_rnn" if self.driver == "dynamic" else ""
            return [(f"{tag}_{k}", level, path(p, f"cell_{k}", inner, tag, level.scope))
                    for k in range(len(self.levels))
                    for tag, level in (("fw", self.levels[k]), ("bw", self.backward_levels[k]))]
        halves = [("fw", self.levels, p)] if self.direction == "forward" else [
            ("fw", self.levels, path(p, "fw")), ("bw", self.backward_levels, path(p, "bw"))]
        out = []
        for tag, levels, prefix in halves:
            for k, level in enumerate(levels):
                stack = f"multi_rnn_cell/cell_{k}" if len(levels) > 1 else ""
                out.append((f"{tag}_{k}", level, path(prefix, stack, level.scope)))
        return out

    def input_sizes(self, input_size):
        """{keras layer name: the input size its cell reads}."""
        sizes, below = {}, {"fw": input_size, "bw": input_size}
        for name, level, _ in self.cells():
            tag, k = name.split("_")
            if self.direction == "stack_bidirectional" and int(k) > 0:
                sizes[name] = (self.levels[int(k) - 1].cell.output_size
                               + self.backward_levels[int(k) - 1].cell.output_size)
            else:
                sizes[name] = below[tag]
                below[tag] = level.cell.output_size
        return sizes

    def variables(self, input_size):
        """{TF1 variable name: shape} of every variable the block creates."""
        sizes = self.input_sizes(input_size)
        return {f"{prefix}/{name}": shape for layer, level, prefix in self.cells()
                for name, shape in level.cell.family.variables(level.cell, sizes[layer]).items()}

    def describe(self):
        def stack(levels):
            names = [level.cell.describe() for level in levels]
            return names[0] if len(names) == 1 else f"MultiRNNCell([{', '.join(names)}])"
        driver = {("forward", "static"): "static_rnn", ("forward", "dynamic"): "dynamic_rnn",
                  ("bidirectional", "static"): "static_bidirectional_rnn",
                  ("bidirectional", "dynamic"): "bidirectional_dynamic_rnn",
                  ("stack_bidirectional", "static"): "stack_bidirectional_rnn",
                  ("stack_bidirectional", "dynamic"): "stack_bidirectional_dynamic_rnn"}[
                      (self.direction, self.driver)]
        if self.direction == "stack_bidirectional":
            body = f"[{', '.join(level.cell.describe() for level in self.levels)}]"
        else:
            body = stack(self.levels)
            if self.direction == "bidirectional":
                body = f"fw={body}, bw={stack(self.backward_levels)}"
        return f"{driver}({body}) under {self.prefix}/"


def _levels(items):
    return tuple(item if isinstance(item, Level) else Level(item) for item in items)


# --- TF1 ------------------------------------------------------------------------------------

def _tf1_level(level, input_size, training):
    cell = level.cell.family.tf1_cell(level.cell, name=level.name)
    if level.dropout:
        d = level.dropout

        def keep(p):
            return p if training is None or p == 1.0 else tf.where(training, p, 1.0)

        cell = tf.compat.v1.nn.rnn_cell.DropoutWrapper(
            cell, input_keep_prob=keep(d.input_keep_prob),
            output_keep_prob=keep(d.output_keep_prob), state_keep_prob=keep(d.state_keep_prob),
            variational_recurrent=d.variational_recurrent, input_size=input_size,
            dtype=tf.float32)
    if level.residual:
        cell = tf.compat.v1.nn.rnn_cell.ResidualWrapper(cell)
    return cell


def _tf1_stack(levels, input_size, training):
    cells, size = [], input_size
    for level in levels:
        cells.append(_tf1_level(level, size, training))
        size = level.cell.output_size
    return cells[0] if len(cells) == 1 else tf.compat.v1.nn.rnn_cell.MultiRNNCell(cells)


def stack_bidirectional_rnn(cells_fw, cells_bw, inputs, initial_states_fw=None,
                            initial_states_bw=None, dtype=None, sequence_length=None, scope=None):
    """`tf.contrib.rnn.stack_bidirectional_rnn` (TF 1.x), which tf.contrib's removal took away:
    each level a `static_bidirectional_rnn` over the previous level's concatenated outputs,
    under `stack_bidirectional_rnn/cell_K` (the level's scope is passed on, so no
    `bidirectional_rnn` scope appears in the names). Returns (outputs, states_fw, states_bw)."""
    states_fw, states_bw, layer = [], [], inputs
    with tf.compat.v1.variable_scope(scope or "stack_bidirectional_rnn"):
        for k, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):
            with tf.compat.v1.variable_scope(f"cell_{k}") as cell_scope:
                layer, state_fw, state_bw = tf.compat.v1.nn.static_bidirectional_rnn(
                    cell_fw, cell_bw, layer,
                    initial_state_fw=initial_states_fw[k] if initial_states_fw else None,
                    initial_state_bw=initial_states_bw[k] if initial_states_bw else None,
                    sequence_length=sequence_length, dtype=dtype, scope=cell_scope)
            states_fw.append(state_fw)
            states_bw.append(state_bw)
    return layer, tuple(states_fw), tuple(states_bw)


def stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, inputs, initial_states_fw=None,
                                    initial_states_bw=None, dtype=None, sequence_length=None,
                                    parallel_iterations=None, time_major=False, scope=None,
                                    swap_memory=False):
    """`tf.contrib.rnn.stack_bidirectional_dynamic_rnn` (TF 1.x): each level a
    `bidirectional_dynamic_rnn` under `stack_bidirectional_rnn/cell_K/bidirectional_rnn/{fw,bw}`,
    its outputs concatenated for the next. Returns (outputs, states_fw, states_bw)."""
    states_fw, states_bw, layer = [], [], inputs
    with tf.compat.v1.variable_scope(scope or "stack_bidirectional_rnn"):
        for k, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):
            with tf.compat.v1.variable_scope(f"cell_{k}"):
                outputs, (state_fw, state_bw) = tf.compat.v1.nn.bidirectional_dynamic_rnn(
                    cell_fw, cell_bw, layer,
                    initial_state_fw=initial_states_fw[k] if initial_states_fw else None,
                    initial_state_bw=initial_states_bw[k] if initial_states_bw else None,
                    sequence_length=sequence_length, parallel_iterations=parallel_iterations,
                    dtype=dtype, swap_memory=swap_memory, time_major=time_major)
                layer = tf.concat(outputs, 2)
            states_fw.append(state_fw)
            states_bw.append(state_bw)
    return layer, tuple(states_fw), tuple(states_bw)


def seeded_initializer():
    """TF 1.x initialised cell kernels with the graph-seeded glorot_uniform_initializer. tf-keras,
    which provides the cells now, seeds its default from Python's `random` instead, so
    `set_random_seed` would not fix them. A scope initializer restores the TF1 behaviour without
    changing any variable name; a scope that already has an initializer keeps it."""
    scope = tf.compat.v1.get_variable_scope()
    if scope.initializer is not None:
        return contextlib.nullcontext()
    return tf.compat.v1.variable_scope(scope, initializer=tf.compat.v1.glorot_uniform_initializer())


def tf1_block(block, inputs, sequence_length=None, initial_state=None, time_major=False,
              parallel_iterations=None, swap_memory=False, training=None, stacked=True):
    """Builds `block` in the current graph over `inputs` (float32 `[batch, time, input]`, or
    `[time, batch, input]` with `time_major`); returns (outputs in the same layout, final state).
    `stacked=False`: the static drivers' outputs as TF1 returns them, a list of `[batch, output]`
    per step (the seeds read `outputs[-1]`; stacking adds ops, and TF1 derives op-level random
    seeds from the graph's op count, so a graph built either way initialises differently).

    `initial_state`: the driver's own argument (forward: the cell's state; bidirectional:
    (fw, bw); stack_bidirectional: (per-level fw states, per-level bw states)). `training`: a bool
    tensor switching DropoutWrapper on (keep probabilities 1.0 where it is False); None keeps
    them as given. `parallel_iterations` and `swap_memory` are the dynamic drivers' own.
    """
    input_size = inputs.shape[-1]
    time_axis = 0 if time_major else 1
    parent, _, name = block.prefix.rpartition("/")
    sizes = block.input_sizes(input_size)
    dynamic = dict(parallel_iterations=parallel_iterations, swap_memory=swap_memory,
                   time_major=time_major)
    with seeded_initializer(), (tf.compat.v1.variable_scope(parent) if parent
                                else contextlib.nullcontext()):
        if block.direction == "stack_bidirectional":
            fw = [_tf1_level(level, sizes[f"fw_{k}"], training)
                  for k, level in enumerate(block.levels)]
            bw = [_tf1_level(level, sizes[f"bw_{k}"], training)
                  for k, level in enumerate(block.backward_levels)]
            states = initial_state or (None, None)
            if block.driver == "dynamic":
                outputs, s_fw, s_bw = stack_bidirectional_dynamic_rnn(
                    fw, bw, inputs, *states, dtype=tf.float32, sequence_length=sequence_length,
                    scope=name, **dynamic)
            else:
                steps = tf.unstack(inputs, axis=time_axis)
                outputs, s_fw, s_bw = stack_bidirectional_rnn(
                    fw, bw, steps, *states, dtype=tf.float32, sequence_length=sequence_length,
                    scope=name)
                outputs = tf.stack(outputs, axis=time_axis) if stacked else outputs
            return outputs, (s_fw, s_bw)
        fw = _tf1_stack(block.levels, input_size, training)
        if block.direction == "bidirectional":
            bw = _tf1_stack(block.backward_levels, input_size, training)
            state_fw, state_bw = initial_state or (None, None)
            if block.driver == "dynamic":
                outputs, states = tf.compat.v1.nn.bidirectional_dynamic_rnn(
                    fw, bw, inputs, sequence_length=sequence_length, initial_state_fw=state_fw,
                    initial_state_bw=state_bw, dtype=tf.float32, scope=name, **dynamic)
                return tf.concat(outputs, 2), states
            outputs, s_fw, s_bw = tf.compat.v1.nn.static_bidirectional_rnn(
                fw, bw, tf.unstack(inputs, axis=time_axis), initial_state_fw=state_fw,
                initial_state_bw=state_bw, dtype=tf.float32, sequence_length=sequence_length,
                scope=name)
            return (tf.stack(outputs, axis=time_axis) if stacked else outputs), (s_fw, s_bw)
        if block.driver == "dynamic":
            return tf.compat.v1.nn.dynamic_rnn(
                fw, inputs, sequence_length=sequence_length, initial_state=initial_state,
                dtype=tf.float32, scope=name, **dynamic)
        outputs, state = tf.compat.v1.nn.static_rnn(
            fw, tf.unstack(inputs, axis=time_axis), initial_state=initial_state, dtype=tf.float32,
            sequence_length=sequence_length, scope=name)
        return (tf.stack(outputs, axis=time_axis) if stacked else outputs), state


# --- Keras 3 ----------------------------------------------------------------------------------

def _dropout_layer(keep, variational, name):
    if keep >= 1.0:
        return None
    # Variational: TF1's one mask of shape [1, size] for the batch and every step.
    return keras.layers.Dropout(1.0 - keep, noise_shape=(1, 1, None) if variational else None,
                                name=name)


def keras_level(level, name, **rnn_kwargs):
    """The `keras.layers.RNN` of one level (its cell with the state dropout, if any)."""
    cell_kwargs = {}
    d = level.dropout
    if d and d.state_keep_prob < 1.0:
        if not (d.variational_recurrent and level.cell.family.state_dropout_twin(level.cell)):
            raise UserError(
                f"{level.cell.describe()} with state_keep_prob={d.state_keep_prob}"
                f"{'' if d.variational_recurrent else ' (a new mask every step)'} has no Keras 3 "
                "twin: Keras's recurrent_dropout keeps one mask per sequence and drops only the "
                "LSTM's h / SimpleRNN's state in the recurrent matmul. Convert with "
                "state_keep_prob=1.0 (it only matters while training).")
        cell_kwargs["recurrent_dropout"] = 1.0 - d.state_keep_prob
    cell = level.cell.family.keras_cell(level.cell, **cell_kwargs)
    return keras.layers.RNN(cell, name=name, **rnn_kwargs)


def _keras_stack(tag, levels, x, mask, states, first=0):
    """Levels `first`, `first + 1`, ... of one direction over the sequence `x`; each level's
    final states go to `states[layer name]`."""
    for k, level in enumerate(levels, start=first):
        name = f"{tag}_{k}"
        below = x
        d = level.dropout or Dropout()
        dropout = _dropout_layer(d.input_keep_prob, d.variational_recurrent,
                                 f"{name}_input_dropout")
        x = dropout(x) if dropout else x
        x, *states[name] = keras_level(level, name, return_sequences=True,
                                       return_state=True)(x, mask=mask)
        dropout = _dropout_layer(d.output_keep_prob, d.variational_recurrent,
                                 f"{name}_output_dropout")
        x = dropout(x) if dropout else x
        if level.residual:
            x = keras.layers.Add(name=f"{name}_residual")([below, x])
    return x


def keras_block(block, input_size, name="block", return_state=False):
    """The Keras 3 model of `block`: `[x, seqlen]` -> outputs `[batch, time, output_size]`.
    With `return_state`, a dict: `outputs`, and each level's final states under its layer name
    (`tf1_state` arranges them as the TF1 driver returns its final state)."""
    x = keras.Input((None, input_size), name="x")
    seqlen = keras.Input((), dtype="int32", name="seqlen")
    mask = keras_cells.length_mask(x, seqlen)
    states = {}

    def backward(levels, inputs, first=0):
        flipped = keras_cells.reverse_within_length(inputs, seqlen)
        out = _keras_stack("bw", levels, flipped, mask, states, first)
        return keras_cells.reverse_within_length(out, seqlen)

    if block.direction == "forward":
        out = _keras_stack("fw", block.levels, x, mask, states)
    elif block.direction == "bidirectional":
        out = keras.layers.Concatenate(name="concat")([
            _keras_stack("fw", block.levels, x, mask, states),
            backward(block.backward_levels, x)])
    else:
        out = x
        for k, (fw, bw) in enumerate(zip(block.levels, block.backward_levels)):
            out = keras.layers.Concatenate(name=f"concat_{k}")([
                _keras_stack("fw", [fw], out, mask, states, k), backward([bw], out, k)])
    out = keras_cells.zero_past_length(out, seqlen)
    return keras.Model([x, seqlen], {"outputs": out, **states} if return_state else out,
                       name=name)


def tf1_state(block, states):
    """The final state as the TF1 driver returns it (numpy), from a `keras_block(...,
    return_state=True)` result's per-layer states."""
    def level_state(name, level):
        return level.cell.family.state_from_keras(level.cell, [np.asarray(s)
                                                               for s in states[name]])

    def stack(tag, levels):
        each = tuple(level_state(f"{tag}_{k}", level) for k, level in enumerate(levels))
        return each[0] if len(each) == 1 and block.direction != "stack_bidirectional" else each

    if block.direction == "forward":
        return stack("fw", block.levels)
    return stack("fw", block.levels), stack("bw", block.backward_levels)


def rnn_layers(model, block):
    """{keras layer name: layer} of the block's recurrent levels inside `model`."""
    return {name: model.get_layer(name) for name, _, _ in block.cells()}


# --- Weights ----------------------------------------------------------------------------------

def to_keras(block, model, tf1):
    """Sets the RNN weights of `model` (a `keras_block`, or any model whose recurrent layers
    carry the block's layer names) from TF1 variables {full name: array}."""
    for name, level, prefix in block.cells():
        relative = {k[len(prefix) + 1:]: v for k, v in tf1.items() if k.startswith(prefix + "/")}
        model.get_layer(name).set_weights(level.cell.family.to_keras(level.cell, relative))


def from_keras(block, arrays, gradients=False):
    """TF1 variables {full name: array} from {keras layer name: list of arrays} (the layers'
    weights, or with `gradients=True` the gradients of those weights)."""
    tf1 = {}
    for name, level, prefix in block.cells():
        for k, v in level.cell.family.to_tf1(level.cell, [np.asarray(a) for a in arrays[name]],
                                             gradients).items():
            tf1[f"{prefix}/{k}"] = v
    return tf1
