"""What every cell family of the zoo provides, and the table they register in.

A `CellSpec` names a TF1 cell and the constructor options that change its arithmetic; its
`CellFamily` knows how to build it in a tf.compat.v1 graph, which variables it creates, its Keras 3
twin, and how weights (and gradients, and states) map between the two. Drivers and structures
(`blocks.py`), the converter and the tests read only this interface, so adding a cell is adding one
module that calls `register` (and its test), nothing else.
"""
import dataclasses

import numpy as np

from legacy_rnn.errors import UserError
from legacy_rnn.facts import ACTIVATIONS
from legacy_rnn.zoo import graphview

FAMILIES = {}


def register(family_class):
    """Class decorator: adds one instance of the family to `FAMILIES`."""
    FAMILIES[family_class.kind] = family_class()
    return family_class


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """One TF1 cell: its family (`kind`), units, and options that differ from TF1's defaults."""
    kind: str
    units: int
    options: tuple = ()  # sorted (name, value) pairs

    @classmethod
    def make(cls, kind, units, **options):
        if kind not in FAMILIES:
            raise UserError(f"Unknown cell {kind!r}; the zoo has {', '.join(sorted(FAMILIES))}.")
        family = FAMILIES[kind]
        options = family.check_options(units, options)
        defaults = family.defaults
        kept = tuple(sorted((k, v) for k, v in options.items() if v != defaults[k]))
        return cls(kind, int(units), kept)

    @property
    def family(self):
        return FAMILIES[self.kind]

    def get(self, name):
        """The option's value; None for an option this cell type does not have."""
        return dict(self.options).get(name, self.family.defaults.get(name))

    @property
    def output_size(self):
        return self.family.output_size(self)

    def describe(self):
        return self.family.describe(self)


class CellFamily:
    """Base of the zoo's cell families; each module subclasses it once and registers it."""
    kind = ""  # the registry key, e.g. "basic_lstm"
    tf1_name = ""  # e.g. "BasicLSTMCell"
    scope = ""  # the variable scope TF1 gives the cell, e.g. "basic_lstm_cell"
    defaults = {}  # TF1 constructor defaults of the options the family knows
    keras_name = ""  # what the Keras 3 twin is, for tables and messages
    kernel_name = "kernel"  # the variable that multiplies concat([x, h_prev]) at every step
    # Options that are not variables: only the .meta graph records them (else a flag, else the
    # default, each said where it came from).
    graph_options = ("activation",)
    # Op types of the family's own kernels (contrib's fused cells): a graph where such an op
    # reads the cell's kernel is this family's, never another's with the same variables.
    fused_ops = ()
    # Of those, the ops that run the cell over a whole time-major sequence (contrib's fused
    # cells): the verification feeds their input and reads their `h` output.
    sequence_ops = ()
    # The TF1 cell is called on the whole sequence by user code, not run by a driver (contrib's
    # fused cells): a block of it is described without a driver.
    called_directly = False
    # A family that is a level of a driver's block (and found as one by discovery); False for
    # one used only inside other structures (`multi.py`: an attention decoder's MultiRNNCell).
    in_blocks = True
    # The twin carries TF1's run-time forget_bias in the f slice of its `bias` (Keras's LSTM has
    # no forget_bias): weights map back within half an ulp there, gradients exactly.
    folds_forget_bias = False
    # Options under which the family creates every variable it can (for the list of names).
    all_options = {}
    # Checkpoints written before TF 1.2: {era: (the cell's scope then, {old name: today's name})}
    # (names relative to the cell's scope; `conversion/upgrade.py` renames them).
    old_names = {}

    def check_options(self, units, options):
        """`options` with values normalised; UserError naming what TF1 or the twin cannot do."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise UserError(f"{self.tf1_name} has no option {', '.join(unknown)}; it takes "
                            f"{', '.join(self.defaults) or 'none'}.")
        if units <= 0:
            raise UserError(f"{self.tf1_name} needs a positive number of units, got {units}.")
        activation = options.get("activation")
        if activation is not None and activation not in ACTIVATIONS:
            raise UserError(
                f"activation={activation!r}: the zoo converts {', '.join(ACTIVATIONS)}, whose "
                "definitions agree between tf-keras and Keras 3. (hard_sigmoid does not: see "
                "docs/migration.md.)")
        return dict(options)

    def describe(self, spec):
        extra = "".join(f", {k}={v!r}" for k, v in spec.options)
        return f"{self.tf1_name}({spec.units}{extra})"

    def option_default(self, spec, name):
        """TF1's default of option `name` (one of `option_names(spec)`)."""
        return self.defaults[name]

    def recognize(self, shapes):
        """(CellSpec, input size) of a cell whose variables (relative to its scope) have these
        shapes, or None when they are not this family's. Options that are not variables
        (forget_bias, clips, activation) are TF1's defaults here; callers set them."""
        units = self.units_from(shapes)
        if not units:
            return None
        spec = CellSpec.make(self.kind, units, **self.options_from(shapes))
        input_size = self.input_size_from(spec, shapes)
        if input_size <= 0 or self.variables(spec, input_size) != shapes:
            return None
        return spec, input_size

    def input_size_from(self, spec, shapes):
        """The cell's input size from its variables' shapes (0 when they do not say it): the
        rows of a kernel over concat([x, h_prev]) less the recurrent ones."""
        kernel = shapes.get(self.kernel_name)
        return kernel[0] - spec.output_size if kernel and len(kernel) == 2 else 0

    def units_from(self, shapes):
        bias = shapes.get("bias")
        return bias[0] if bias and len(bias) == 1 else None

    def options_from(self, shapes):
        return {}

    def cases(self):
        """{label: CellSpec}: the family's canonical cases, options off their defaults first (the
        first is the family's representative). Tests, the canary suite and the backend check take
        their cells from here (`canonical_cases`)."""
        return {self.tf1_name: CellSpec.make(self.kind, 4)}

    def variable_names(self):
        """Every variable name (relative to the cell's scope) the family can create."""
        return set(self.variables(CellSpec.make(self.kind, 4, **self.all_options), 3))

    # --- The .meta graph ------------------------------------------------------------------
    def option_names(self, spec):
        """The `graph_options` that apply to `spec`."""
        return list(self.graph_options)

    def in_graph(self, view, prefix):
        """Whether the graph computes the cell under `prefix` with this family's ops: True or
        False, or None when the graph shows no use of its kernel."""
        fused = {op for family in FAMILIES.values() for op in family.fused_ops}
        uses = graphview.first_use(view, f"{prefix}/{self.kernel_name}", {"MatMul", *fused})
        if not uses:
            return None
        types = {view.op(key) for key in uses}
        if self.fused_ops:
            return bool(types & set(self.fused_ops))
        return "MatMul" in types and not types & fused

    def steps_in_graph(self, view, prefix):
        """[(op key, producer of x_t, producer of h_prev)] of every op computing one step of the
        cell under `prefix` (the verification feeds x_t and reads h_prev there): for TF1's own
        cells, the MatMul of concat([x_t, h_prev]) by the kernel; None for a step that is not."""
        steps = []
        for key in graphview.first_use(view, f"{prefix}/{self.kernel_name}", {"MatMul"}):
            concat = view.inputs[key][0]
            if view.op(concat[:2]) != "ConcatV2" or len(view.inputs[concat[:2]]) != 3:
                return None
            steps.append((key, *view.inputs[concat[:2]][:2]))
        return steps

    def options_in_graph(self, view, prefix):
        """{option: value} that the graph's ops show for the cell under `prefix` (those it shows:
        the caller says where the others came from)."""
        return {}

    def sequence_calls(self, view, prefix):
        """[(op key, producer of its time-major x, output index of its h)] of the `sequence_ops`
        that run the cell under `prefix` (BlockLSTM's inputs: seq_len_max, x, ...; outputs: i,
        cs, f, o, ci, co, h)."""
        if not self.sequence_ops:
            return []
        return [(key, view.inputs[key][1], 6) for key in graphview.first_use(
            view, f"{prefix}/{self.kernel_name}", set(self.sequence_ops))]

    # --- TF1 side -------------------------------------------------------------------------
    def tf1_cell(self, spec, name=None):
        raise NotImplementedError

    def variables(self, spec, input_size):
        """{name relative to the cell's scope: shape} of what the TF1 cell creates."""
        raise NotImplementedError

    def output_size(self, spec):
        return spec.units

    # --- Keras 3 side ---------------------------------------------------------------------
    def keras_cell(self, spec, **kwargs):
        raise NotImplementedError

    def from_keras_cell(self, cell, activation_name):
        """The CellSpec options of a Keras 3 cell this family's twin is, or None when it is not
        (`activation_name(fn)` names a Keras activation)."""
        return None

    def registered_twin(self, spec):
        """Whether the twin is a cell of `legacy_rnn.keras_cells` (a file using it needs that
        module imported before loading) rather than a Keras built-in."""
        return False

    def state_dropout_twin(self, spec):
        """Whether Keras's `recurrent_dropout` on the twin computes TF1's variational
        `state_keep_prob` (it drops h_prev in the recurrent matmul only: the same function when
        the state is used nowhere else, as in SimpleRNN and LSTM's h; not in a GRU's update)."""
        return False

    def to_keras(self, spec, tf1):
        """Keras cell weights (a list in `cell.get_weights()` order) from {relative name: array}."""
        raise NotImplementedError

    def to_tf1(self, spec, weights, gradients=False):
        """The inverse of `to_keras`. `gradients=True` maps gradients: a bias offset folded into
        the Keras weights (the LSTM's forget_bias) is not subtracted from a gradient."""
        raise NotImplementedError

    # --- States (numpy arrays) ------------------------------------------------------------
    def state_to_keras(self, spec, state):
        """TF1 state (array, or tuple of arrays) -> the list a Keras RNN takes as initial_state."""
        return [state]

    def state_from_keras(self, spec, states):
        return states[0]


def positive_or_none(options, name):
    """`options[name]` as a positive int, or None where it is not given (num_proj)."""
    value = options.get(name)
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count <= 0 or count != value and str(count) != str(value):
        raise UserError(f"{name}={value!r} must be a positive whole number (or None).")
    return count


def canonical_cases(representatives=False):
    """{label: CellSpec} of every family's `cases()`, or only each family's first."""
    out = {}
    for family in FAMILIES.values():
        cases = family.cases()
        out.update(list(cases.items())[:1] if representatives else cases)
    return out


def tf1_state_sizes(spec):
    """The sizes of the TF1 cell's state, in `nest.flatten` order."""
    import tensorflow as tf
    return [int(size) for size in tf.nest.flatten(spec.family.tf1_cell(spec).state_size)]


def _keras_zero_states(spec):
    """The twin's states of a zero TF1 state, through the family's own mapping (building the
    Keras cell would add its seed variables to whatever graph is being built)."""
    import tensorflow as tf
    zeros = tf.nest.map_structure(lambda size: np.zeros((1, size), np.float32),
                                  spec.family.tf1_cell(spec).state_size)
    return spec.family.state_to_keras(spec, zeros)


def keras_state_count(spec):
    """How many states the Keras twin of `spec` has."""
    return len(_keras_zero_states(spec))


def keras_state_order(spec):
    """The twin's states, by index, in the order TF1 lays out `concat(nest.flatten(state))`
    (what an attention query over the state reads): each Keras state tagged with its index,
    mapped to TF1's state by the family, and read back column by column (a concatenated LSTM
    state is one tensor [c, h])."""
    import tensorflow as tf
    tagged = [np.full(np.shape(s), i, np.int64) for i, s in enumerate(_keras_zero_states(spec))]
    columns = np.concatenate([np.asarray(t).reshape(1, -1) for t in tf.nest.flatten(
        spec.family.state_from_keras(spec, tagged))], axis=1)[0]
    return [int(c) for k, c in enumerate(columns) if k == 0 or c != columns[k - 1]]


def split_rows(kernel, units):
    """TF1 kernels act on concat([x, h]): (input rows, recurrent rows)."""
    n_in = kernel.shape[0] - units
    if n_in <= 0:
        raise ValueError(f"kernel has {kernel.shape[0]} rows, not more than the {units} units")
    return kernel[:n_in], kernel[n_in:]


def stack_rows(kernel, recurrent_kernel):
    return np.concatenate([kernel, recurrent_kernel], axis=0)


def kernel_and_bias_to_keras(tf1, units):
    """A cell of TF1 `kernel [in + U, n]` and `bias [n]` as Keras's [kernel, recurrent_kernel,
    bias] (the columns in the same order)."""
    return [*split_rows(tf1["kernel"], units), tf1["bias"]]


def kernel_and_bias_to_tf1(weights):
    kernel, recurrent_kernel, bias = weights
    return {"kernel": stack_rows(kernel, recurrent_kernel), "bias": bias}
