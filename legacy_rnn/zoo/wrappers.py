"""What a cell wrapper with variables of its own provides, and the table the wrappers register in.

A wrapper such as tf.contrib's `OutputProjectionWrapper` sits between a TF1 driver and the cell
it runs (one cell, or a whole `MultiRNNCell`): it opens a variable scope of its own, holds its
variables there, and the cell's scope nests inside it:

    rnn/output_projection_wrapper/kernel, .../bias                      the wrapper's own
    rnn/output_projection_wrapper/multi_rnn_cell/cell_0/lstm_cell/...   the cell it wraps

A block (`blocks.Block.wrappers`) lists its wrappers outermost first; each direction of a
bidirectional block has its own copy. The Keras twin of a wrapper is a layer before or after the
block's recurrent layers of that direction (`side`). DropoutWrapper and ResidualWrapper, which
have no variables and no scope, are a level's settings instead (`blocks.Level`).
"""
import dataclasses

import tensorflow as tf

from legacy_rnn.errors import UserError
from legacy_rnn.facts import ACTIVATIONS

WRAPPERS = {}  # kind -> Wrapper


def register(wrapper_class):
    WRAPPERS[wrapper_class.kind] = wrapper_class()
    return wrapper_class


def by_scope():
    """{TF1's default scope: Wrapper}."""
    return {w.scope: w for w in WRAPPERS.values()}


@dataclasses.dataclass(frozen=True)
class WrapperSpec:
    """One wrapper: its kind, the size it projects to, and its activation ("linear": none)."""
    kind: str
    size: int
    activation: str = "linear"
    classes: int | None = None  # EmbeddingWrapper's embedding_classes

    def __post_init__(self):
        if self.kind not in WRAPPERS:
            raise UserError(f"Unknown wrapper {self.kind!r}; the zoo has "
                            f"{', '.join(sorted(WRAPPERS))}.")
        if int(self.size) <= 0:
            raise UserError(f"{self.wrapper.tf1_name} needs a positive size, got {self.size}.")
        if self.activation not in ACTIVATIONS:
            raise UserError(f"{self.wrapper.tf1_name}(activation={self.activation!r}): the zoo "
                            f"converts {', '.join(ACTIVATIONS)}.")

    @property
    def wrapper(self):
        return WRAPPERS[self.kind]

    def describe(self, inner):
        if self.classes is not None:
            return f"{self.wrapper.tf1_name}({inner}, {self.classes}, {self.size})"
        extra = "" if self.activation == "linear" else f", activation={self.activation}"
        return f"{self.wrapper.tf1_name}({inner}, {self.size}{extra})"


class Wrapper:
    """Base of the zoo's wrappers; each module subclasses it and registers it."""
    kind = ""  # the registry key, e.g. "output_projection"
    tf1_name = ""  # e.g. "OutputProjectionWrapper"
    scope = ""  # the variable scope TF1 gives it, e.g. "output_projection_wrapper"
    side = ""  # "input": it maps what the cell reads; "output": what the cell writes
    reads_ids = False  # the block then reads ids `[batch, time, 1]` (EmbeddingWrapper)
    has_activation = True  # an `activation` option (the projections'; not EmbeddingWrapper's)

    def cell_input_size(self, spec, input_size):
        """The size of what the wrapped cell reads, from the size of what the wrapper reads."""
        return spec.size if self.side == "input" else input_size

    def output_size(self, spec, inner_size):
        """The size of what the wrapper writes, from the size of what the wrapped cell writes."""
        return spec.size if self.side == "output" else inner_size

    def variables(self, spec, input_size, inner_size):
        """{name relative to the wrapper's scope: shape}, given the sizes of what the wrapper
        reads and of what the cell inside it writes."""
        raise NotImplementedError

    def recognize(self, shapes):
        """The WrapperSpec (activation: TF1's default) of a wrapper whose variables (relative to
        its scope) have these shapes, or None."""
        raise NotImplementedError

    def input_size_from(self, shapes, prefix):
        """The size of what an input-side wrapper under `prefix` reads, from {name: shape}."""
        raise NotImplementedError

    def options_in_graph(self, view, prefix):
        """{option: value} the `.meta` graph shows for the wrapper under `prefix`."""
        return {}

    def steps_in_graph(self, view, prefix):
        """[(producer of what the wrapper reads at step t, key of the op writing its output)]
        of the wrapper under `prefix`, in build order; None where the graph does not show
        them."""
        return None

    def tf1_wrap(self, spec, cell):
        raise NotImplementedError

    def keras_layer(self, spec, name):
        raise NotImplementedError

    def to_keras(self, spec, tf1):
        """The Keras layer's weights from {relative name: array}."""
        raise NotImplementedError

    def to_tf1(self, spec, weights):
        raise NotImplementedError

    def from_keras_layer(self, layer, activation_name):
        """The WrapperSpec of a Keras layer this wrapper's twin wrote, or None."""
        return None


class WrappingCell(tf.compat.v1.nn.rnn_cell.RNNCell):
    """The TF1 side's base of contrib's stateless wrappers (the state and its zeros are the wrapped
    cell's; the output too unless the wrapper maps it)."""

    def __init__(self, cell, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._cell = cell

    @property
    def state_size(self):
        return self._cell.state_size

    @property
    def output_size(self):
        return self._cell.output_size

    def zero_state(self, batch_size, dtype):
        with tf.name_scope(type(self).__name__ + "ZeroState"):
            return self._cell.zero_state(batch_size, dtype)


def layer_name(half, index, spec):
    """The Keras name of wrapper `index` (outermost 0) of one direction: `fw_output_projection_0`."""
    return f"{half}_{spec.kind}_{index}"
