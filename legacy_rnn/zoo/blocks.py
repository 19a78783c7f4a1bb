"""Recurrent blocks: a stack of zoo cells run by one TF1 driver (`drivers.py`), and the Keras 3
block that computes the same function. Neither the blocks nor the drivers know which cells they run.

A `Block` is what one call of a TF1 driver builds: its levels (a cell and its wrappers each), the
driver, and the prefix of its variable names; `multi` says the code wrapped the levels in a
`MultiRNNCell` (the names then hold `multi_rnn_cell/cell_K`, even for a stack of one). A stack
level wraps its cell as GNMT did: `ResidualWrapper(DropoutWrapper(cell))`.

The Keras twin (`keras_block`) takes `[x [batch, time, input], seqlen [batch]]` and returns the
output sequence `[batch, time, output]` as the TF1 driver does from a zero initial state with that
`sequence_length`: zeros past each length, forward and backward concatenated. Each level is one
`keras.layers.RNN` named `fw_K` / `bw_K`; a TF1 stack becomes stacked layers with
`return_sequences=True`.
"""
import contextlib
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.errors import UserError
from legacy_rnn.zoo import drivers
from legacy_rnn.zoo.cells import CellSpec

DRIVERS = ("static", "dynamic")
DIRECTIONS = ("forward", "bidirectional", "stack_bidirectional")


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
    scope: str | None = None  # variable-name prefix up to the driver's scope (its default_scope)
    multi: bool | None = None  # levels wrapped in a MultiRNNCell; default: more than one level
    # WrapperSpecs around each direction's cell (or MultiRNNCell), outermost first
    # (`wrappers.py`: OutputProjectionWrapper, ...).
    wrappers: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "levels", _levels(self.levels))
        object.__setattr__(self, "wrappers", tuple(self.wrappers))
        readers = [i for i, w in enumerate(self.wrappers) if w.wrapper.reads_ids]
        inputs = [i for i, w in enumerate(self.wrappers) if w.wrapper.side == "input"]
        if readers and readers != inputs[:1]:
            raise UserError("An EmbeddingWrapper is the outermost of a block's input-side "
                            "wrappers (what reads the ids); wrap the others inside it.")
        if self.wrappers and self.direction == "stack_bidirectional":
            raise UserError("A stack_bidirectional block has no wrappers around its cells: "
                            "each level's cells are passed one by one (wrap them per level).")
        if self.backward is not None:
            object.__setattr__(self, "backward", _levels(self.backward))
        if self.direction not in DIRECTIONS:
            raise UserError(f"direction {self.direction!r}: one of {', '.join(DIRECTIONS)}.")
        if drivers.get(self.direction, self.driver) is None:
            raise UserError(f"driver {self.driver!r}: one of {', '.join(DRIVERS)}.")
        if not self.levels:
            raise UserError("A block needs at least one cell.")
        if self.multi is None or self.direction == "stack_bidirectional":
            object.__setattr__(self, "multi", self.direction != "stack_bidirectional"
                               and (len(self.levels) > 1 if self.multi is None else self.multi))
        if self.direction == "forward" and self.backward is not None:
            raise UserError("A forward block has no backward cells.")
        if self.direction != "forward" and len(self.backward_levels) != len(self.levels):
            raise UserError(f"{len(self.levels)} forward and {len(self.backward_levels)} backward "
                            "levels: TF1's bidirectional drivers pair them one to one.")

    @property
    def runner(self):
        """The `drivers.Driver` that builds and names this block."""
        return drivers.get(self.direction, self.driver)

    @property
    def backward_levels(self):
        if self.direction == "forward":
            return ()
        return self.levels if self.backward is None else self.backward

    @property
    def prefix(self):
        return self.runner.default_scope if self.scope is None else self.scope

    @property
    def output_size(self):
        size = self.through_wrappers(0, self.levels)[3]
        if self.backward_levels:
            size += self.through_wrappers(0, self.backward_levels)[3]
        return size

    def through_wrappers(self, input_size, levels):
        """Sizes along one direction's wrappers (outermost first) around its `levels`:
        ([what each wrapper reads], [what the cell inside each writes], what the bottom cell
        reads, what the outermost wrapper writes)."""
        reads, size = [], input_size
        for spec in self.wrappers:
            reads.append(size)
            size = spec.wrapper.cell_input_size(spec, size)
        cell_input, inner, out = size, [], levels[-1].cell.output_size
        for spec in reversed(self.wrappers):
            inner.append(out)
            out = spec.wrapper.output_size(spec, out)
        return reads, inner[::-1], cell_input, out

    @property
    def id_classes(self):
        """The number of ids the block reads (its outermost wrapper an EmbeddingWrapper), or
        None for a block reading vectors."""
        readers = [w for w in self.wrappers if w.wrapper.reads_ids]
        return readers[0].classes if readers else None

    def wrapped(self):
        """[(keras layer name, WrapperSpec, TF1 prefix of its scope, half, index)], each
        direction's outermost first."""
        return self.runner.wrapped(self)

    def cells(self):
        """[(keras layer name, Level, TF1 variable prefix of its cell)], bottom level first."""
        return self.runner.cells(self)

    def layer_names(self):
        """The Keras block's layers that hold weights: each level's RNN, then each wrapper's."""
        return [name for name, _, _ in self.cells()] + [name for name, *_ in self.wrapped()]

    def input_sizes(self, input_size):
        """{keras layer name: the input size its cell reads}."""
        return self.runner.input_sizes(self, input_size)

    def variables(self, input_size):
        """{TF1 variable name: shape} of every variable the block creates."""
        sizes = self.input_sizes(input_size)
        names = {f"{prefix}/{name}": shape for layer, level, prefix in self.cells()
                 for name, shape in level.cell.family.variables(level.cell, sizes[layer]).items()}
        for _, spec, prefix, half, index in self.wrapped():
            reads, inner, _, _ = self.through_wrappers(
                input_size, self.levels if half == "fw" else self.backward_levels)
            names.update({f"{prefix}/{name}": shape for name, shape in spec.wrapper.variables(
                spec, reads[index], inner[index]).items()})
        return names

    def describe(self):
        return self.runner.describe(self)


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


def _tf1_stack(block, levels, input_size, training):
    cells, size = [], block.through_wrappers(input_size, levels)[2]
    for level in levels:
        cells.append(_tf1_level(level, size, training))
        size = level.cell.output_size
    cell = tf.compat.v1.nn.rnn_cell.MultiRNNCell(cells) if block.multi else cells[0]
    for spec in reversed(block.wrappers):
        cell = spec.wrapper.tf1_wrap(spec, cell)
    return cell


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
    parent, _, name = block.prefix.rpartition("/")
    dynamic = dict(parallel_iterations=parallel_iterations, swap_memory=swap_memory)
    with seeded_initializer(), (tf.compat.v1.variable_scope(parent) if parent
                                else contextlib.nullcontext()):
        if block.direction == "stack_bidirectional":
            sizes = block.input_sizes(input_size)
            cells = {tag: [_tf1_level(level, sizes[f"{tag}_{k}"], training)
                           for k, level in enumerate(levels)]
                     for tag, levels in (("fw", block.levels), ("bw", block.backward_levels))}
        else:
            cells = {tag: _tf1_stack(block, levels, input_size, training)
                     for tag, levels in (("fw", block.levels), ("bw", block.backward_levels))
                     if levels}
        return block.runner.build(block, cells, inputs, sequence_length, initial_state,
                                  time_major, dynamic if block.driver == "dynamic" else {},
                                  stacked, name)


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


def keras_wrapped(block, half, x, run_levels, first=0, last=None, model=None):
    """One direction's levels `first..last` (`run_levels(x)`), inside its wrappers' layers when
    the levels are the whole stack: the input side's before them, the output side's after. New
    layers, or with `model` (a `keras_block`) its own."""
    depth = len(block.levels)
    last = depth - 1 if last is None else last
    whole = first == 0 and last == depth - 1
    layers = [(spec, model.get_layer(name) if model else spec.wrapper.keras_layer(spec, name))
              for name, spec, _, h, _ in block.wrapped() if h == half and whole]
    for spec, layer in layers:
        if spec.wrapper.side == "input":
            x = layer(x)
    out = run_levels(x)
    for spec, layer in reversed(layers):
        if spec.wrapper.side == "output":
            out = layer(out)
    return out



def keras_block(block, input_size, name="block", return_state=False):
    """The Keras 3 model of `block`: `[x, seqlen]` -> outputs `[batch, time, output_size]`.
    With `return_state`, a dict: `outputs`, and each level's final states under its layer name
    (`tf1_state` arranges them as the TF1 driver returns its final state)."""
    x = keras.Input((None, input_size), name="x")
    seqlen = keras.Input((), dtype="int32", name="seqlen")
    mask = keras_cells.length_mask(x, seqlen)
    states = {}

    def run_stack(tag, levels, inputs, first):
        return keras_wrapped(block, tag, inputs,
                             lambda x: _keras_stack(tag, levels, x, mask, states, first),
                             first, first + len(levels) - 1)

    out = keras_cells.zero_past_length(block.runner.keras(block, x, seqlen, run_stack), seqlen)
    return keras.Model([x, seqlen], {"outputs": out, **states} if return_state else out,
                       name=name)


def tf1_state(block, states):
    """The final state as the TF1 driver returns it (numpy), from a `keras_block(...,
    return_state=True)` result's per-layer states."""
    level_states = {name: level.cell.family.state_from_keras(level.cell,
                                                             [np.asarray(s) for s in states[name]])
                    for name, level, _ in block.cells()}
    return block.runner.tf1_state(block, level_states)


# --- Weights ----------------------------------------------------------------------------------

def to_keras(block, model, tf1):
    """Sets the RNN weights of `model` (a `keras_block`, or any model whose recurrent layers
    carry the block's layer names) from TF1 variables {full name: array}."""
    for name, level, prefix in block.cells():
        relative = {k[len(prefix) + 1:]: v for k, v in tf1.items() if k.startswith(prefix + "/")}
        model.get_layer(name).set_weights(level.cell.family.to_keras(level.cell, relative))
    for name, spec, prefix, _, _ in block.wrapped():
        relative = {k[len(prefix) + 1:]: v for k, v in tf1.items()
                    if k.startswith(prefix + "/") and "/" not in k[len(prefix) + 1:]}
        model.get_layer(name).set_weights(spec.wrapper.to_keras(spec, relative))


def from_keras(block, arrays, gradients=False):
    """TF1 variables {full name: array} from {keras layer name: list of arrays} (the layers'
    weights, or with `gradients=True` the gradients of those weights)."""
    tf1 = {}
    for name, level, prefix in block.cells():
        for k, v in level.cell.family.to_tf1(level.cell, [np.asarray(a) for a in arrays[name]],
                                             gradients).items():
            tf1[f"{prefix}/{k}"] = v
    for name, spec, prefix, _, _ in block.wrapped():
        for k, v in spec.wrapper.to_tf1(spec, [np.asarray(a) for a in arrays[name]]).items():
            tf1[f"{prefix}/{k}"] = v
    return tf1
