"""tf.contrib's `AttentionCellWrapper` (TF 1.15, `contrib/rnn/python/ops/rnn_cell.py`; Magenta's
attention RNN) <-> the registered Keras 3 cell `legacy_rnn.keras_cells.AttentionCell` around the
wrapped cell's own twin (its docstring has the equations).

The wrapper keeps a window of its last `attn_length` outputs and attends over it with the wrapped
cell's new state. Its variables, under `attention_cell_wrapper/` (A = attn_size, the wrapped
cell's output size by default; V = attn_vec_size, A by default; I = input_size, x's width by
default; S = the wrapped cell's state sizes summed, in `nest.flatten` order):

    kernel [in + A, I], bias [I]                     x' = [x, attns] K + b, what the cell reads
    <cell>/...                                        the wrapped cell (its default scope)
    attention/attn_w [1, 1, A, V], attention/attn_v [V]   a 1x1 conv over the window, and v
    attention/kernel [S, V], attention/bias [V]      the query: concat(flatten(new state))
    attn_output_projection/kernel [out + A, A], .../bias [A]   the output, [out, attns] P + p

State: (the wrapped cell's state, attns [A], the window flattened [L * A]), zeros at first.
`attn_length` is in no variable's shape: only the `.meta` graph shows it (the window's Reshape),
else `convert --attn_length`; it is never assumed. The wrapped cell's own options (forget_bias,
...) are read as that cell's family reads them, under `attention_cell_wrapper/<cell>`.
`state_is_tuple=False` (one concatenated state) is not reproduced: its variables are the same, so
such a checkpoint is read as this family, and the check against the user's graph (which feeds the
loop's input and reads its output) decides; it is not tested here.
"""
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.errors import UserError
from legacy_rnn.zoo import cells, graphview

OWN = {"kernel", "bias", "attention/attn_w", "attention/attn_v", "attention/kernel",
       "attention/bias", "attn_output_projection/kernel", "attn_output_projection/bias"}


class AttentionCellWrapper(tf.compat.v1.nn.rnn_cell.RNNCell):
    """contrib's AttentionCellWrapper (state_is_tuple=True) on today's TF, with its variable names
    and math."""

    def __init__(self, cell, attn_length, attn_size=None, attn_vec_size=None, input_size=None,
                 name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._cell = cell
        self._attn_length = attn_length
        self._attn_size = attn_size or cell.output_size
        self._attn_vec_size = attn_vec_size or self._attn_size
        self._input_size = input_size

    @property
    def state_size(self):
        return (self._cell.state_size, self._attn_size, self._attn_size * self._attn_length)

    @property
    def output_size(self):
        return self._attn_size

    def build(self, inputs_shape):
        a, v, width = self._attn_size, self._attn_vec_size, inputs_shape[-1]
        size = self._input_size or width
        zeros = tf.compat.v1.zeros_initializer()
        self._kernel = self.add_weight("kernel", shape=[width + a, size])
        self._bias = self.add_weight("bias", shape=[size], initializer=zeros)
        self._attn_w = self.add_weight("attention/attn_w", shape=[1, 1, a, v])
        self._attn_v = self.add_weight("attention/attn_v", shape=[v])
        query = sum(tf.nest.flatten(self._cell.state_size))
        self._query_kernel = self.add_weight("attention/kernel", shape=[query, v])
        self._query_bias = self.add_weight("attention/bias", shape=[v], initializer=zeros)
        self._out_kernel = self.add_weight("attn_output_projection/kernel",
                                           shape=[self._cell.output_size + a, a])
        self._out_bias = self.add_weight("attn_output_projection/bias", shape=[a],
                                         initializer=zeros)
        self.built = True

    def call(self, inputs, state):
        a, v, length = self._attn_size, self._attn_vec_size, self._attn_length
        cell_state, attns, window = state
        window = tf.reshape(window, [-1, length, a])
        x = tf.nn.bias_add(tf.matmul(tf.concat([inputs, attns], 1), self._kernel), self._bias)
        cell_output, new_state = self._cell(x, cell_state)
        query = tf.concat(tf.nest.flatten(new_state), 1)
        hidden = tf.reshape(window, [-1, length, 1, a])
        features = tf.nn.conv2d(hidden, self._attn_w, [1, 1, 1, 1], "SAME")
        y = tf.reshape(tf.nn.bias_add(tf.matmul(query, self._query_kernel), self._query_bias),
                       [-1, 1, 1, v])
        weights = tf.nn.softmax(tf.reduce_sum(self._attn_v * tf.tanh(features + y), [2, 3]))
        new_attns = tf.reshape(tf.reduce_sum(tf.reshape(weights, [-1, length, 1, 1]) * hidden,
                                             [1, 2]), [-1, a])
        output = tf.nn.bias_add(tf.matmul(tf.concat([cell_output, new_attns], 1),
                                          self._out_kernel), self._out_bias)
        window = tf.concat([tf.slice(window, [0, 1, 0], [-1, -1, -1]),
                            tf.expand_dims(output, 1)], 1)
        return output, (new_state, new_attns, tf.reshape(window, [-1, length * a]))


@cells.register
class AttentionCell(cells.CellFamily):
    kind = "attention_cell_wrapper"
    tf1_name = "AttentionCellWrapper"
    scope = "attention_cell_wrapper"
    defaults = {"cell": None, "attn_length": None, "attn_vec_size": None, "input_size": None}
    keras_name = "keras_cells.AttentionCell (registered) around the wrapped cell's twin"
    graph_options = ("attn_length",)

    def _wrappable(self):
        return [f for f in cells.FAMILIES.values() if f is not self and not f.called_directly]

    def check_options(self, units, options):
        inner = options.get("cell")
        if not isinstance(inner, cells.CellSpec) or inner.kind == self.kind:
            raise UserError("AttentionCellWrapper needs the cell it wraps (a zoo CellSpec).")
        # The wrapped cell's own options (forget_bias, ...), as read from the graph or flags.
        own = {k: v for k, v in options.items() if k in self.defaults}
        theirs = {k: v for k, v in options.items() if k not in self.defaults}
        unknown = sorted(set(theirs) - set(inner.family.defaults))
        if unknown:
            raise UserError(f"AttentionCellWrapper({inner.describe()}) has no option "
                            f"{', '.join(unknown)}.")
        if theirs:
            own["cell"] = cells.CellSpec.make(inner.kind, inner.units,
                                              **{**dict(inner.options), **theirs})
        for name in ("attn_length", "attn_vec_size", "input_size"):
            if name in own:
                own[name] = cells.positive_or_none(own, name)
        if units <= 0:
            raise UserError(f"AttentionCellWrapper needs a positive attn_size, got {units}.")
        return own

    def option_names(self, spec):
        inner = spec.get("cell")
        return ["attn_length", *inner.family.option_names(inner)]

    def option_default(self, spec, name):
        inner = spec.get("cell")
        return self.defaults[name] if name in self.defaults else inner.family.defaults[name]

    def describe(self, spec):
        extra = "".join(f", {k}={v!r}" for k, v in spec.options if k != "cell")
        return f"AttentionCellWrapper({spec.get('cell').describe()}, attn_size={spec.units}{extra})"

    def cases(self):
        inner = cells.CellSpec.make("basic_lstm", 4, forget_bias=0.5)
        return {"AttentionCellWrapper(BasicLSTMCell, attn_length, attn_vec_size)":
                cells.CellSpec.make(self.kind, 3, cell=inner, attn_length=3, attn_vec_size=5)}

    def variable_names(self):
        return OWN | {f"{f.scope}/{name}" for f in self._wrappable()
                      for name in f.variable_names()}

    # --- Recognition ----------------------------------------------------------------------
    def recognize(self, shapes):
        if not OWN <= set(shapes):
            return None
        inner_names = {k: v for k, v in shapes.items() if k not in OWN}
        scopes = {k.split("/", 1)[0] for k in inner_names}
        if len(scopes) != 1:
            return None
        (scope,) = scopes
        relative = {k[len(scope) + 1:]: v for k, v in inner_names.items()}
        for family in self._wrappable():
            found = family.recognize(relative) if family.scope == scope else None
            if not found:
                continue
            inner, read = found
            a, v = shapes["attn_output_projection/bias"][0], shapes["attention/attn_v"][0]
            width = shapes["kernel"][0] - a
            spec = cells.CellSpec.make(self.kind, a, cell=inner,
                                       attn_vec_size=None if v == a else v,
                                       input_size=None if read == width else read)
            if width > 0 and self.variables(spec, width) == shapes:
                return spec, width
        return None

    def options_in_graph(self, view, prefix):
        """attn_length from the window's Reshape to [-1, L, 1, A] that the conv reads; the
        wrapped cell's options as its family reads them."""
        options = {}
        conv = graphview.first_use(view, f"{prefix}/attention/attn_w", {"Conv2D"})
        if conv:
            reshape = view.inputs[conv[0]][0]
            shape = view.const_array(view.inputs[reshape[:2]][1][:2]) if view.op(
                reshape[:2]) == "Reshape" else None
            if shape is not None and len(shape) == 4:
                options["attn_length"] = int(shape[1])
        for family in self._wrappable():  # the wrapped cell: the family whose kernel is there
            inner = f"{prefix}/{family.scope}"
            if family.in_graph(view, inner):
                options.update(family.options_in_graph(view, inner))
                break
        return options

    def steps_in_graph(self, view, prefix):
        return None  # its kernel reads concat([x, attns]), not the previous output

    # --- TF1 side -------------------------------------------------------------------------
    def _length(self, spec):
        length = spec.get("attn_length")
        if length is None:
            raise UserError(
                "AttentionCellWrapper's attn_length (the window of past outputs it attends "
                "over) is in no variable's shape: only the .meta graph shows it. Keep the .meta "
                "the Saver wrote beside the checkpoint, or pass --attn_length=N (the "
                "AttentionCellWrapper(cell, attn_length=N) of your code).")
        return length

    def tf1_cell(self, spec, name=None):
        inner = spec.get("cell")
        return AttentionCellWrapper(inner.family.tf1_cell(inner), self._length(spec),
                                    attn_size=spec.units, attn_vec_size=spec.get("attn_vec_size"),
                                    input_size=spec.get("input_size"), name=name or self.scope)

    def output_size(self, spec):
        return spec.units

    def variables(self, spec, input_size):
        inner, a = spec.get("cell"), spec.units
        v, size = spec.get("attn_vec_size") or a, spec.get("input_size") or input_size
        names = {"kernel": (input_size + a, size), "bias": (size,),
                 "attention/attn_w": (1, 1, a, v), "attention/attn_v": (v,),
                 "attention/kernel": (sum(cells.tf1_state_sizes(inner)), v), "attention/bias": (v,),
                 "attn_output_projection/kernel": (inner.output_size + a, a),
                 "attn_output_projection/bias": (a,)}
        names.update({f"{inner.family.scope}/{k}": s
                      for k, s in inner.family.variables(inner, size).items()})
        return names

    # --- Keras 3 side ---------------------------------------------------------------------
    def keras_cell(self, spec, **kwargs):
        if kwargs:
            raise UserError(f"{self.describe(spec)} with {', '.join(kwargs)}: the twin has no "
                            "such option.")
        inner = spec.get("cell")
        return keras_cells.AttentionCell(inner.family.keras_cell(inner), self._length(spec),
                                         spec.units, spec.get("attn_vec_size"),
                                         spec.get("input_size"),
                                         query_order=cells.keras_state_order(inner))

    def registered_twin(self, spec):
        return True

    def to_keras(self, spec, tf1):
        inner = spec.get("cell")
        scope = inner.family.scope + "/"
        theirs = {k[len(scope):]: v for k, v in tf1.items() if k.startswith(scope)}
        w = tf1["attention/attn_w"]
        return [tf1["kernel"], tf1["bias"], tf1["attention/kernel"], tf1["attention/bias"],
                w.reshape(w.shape[2:]), tf1["attention/attn_v"],
                tf1["attn_output_projection/kernel"], tf1["attn_output_projection/bias"],
                *inner.family.to_keras(inner, theirs)]

    def to_tf1(self, spec, weights, gradients=False):
        inner = spec.get("cell")
        (kernel, bias, query_kernel, query_bias, attn_w, attn_v, out_kernel, out_bias,
         *theirs) = weights
        out = {"kernel": kernel, "bias": bias, "attention/kernel": query_kernel,
               "attention/bias": query_bias, "attention/attn_w": attn_w.reshape(
                   (1, 1, *attn_w.shape)), "attention/attn_v": attn_v,
               "attn_output_projection/kernel": out_kernel, "attn_output_projection/bias": out_bias}
        out.update({f"{inner.family.scope}/{k}": v
                    for k, v in inner.family.to_tf1(inner, theirs, gradients).items()})
        return out

    # --- States ---------------------------------------------------------------------------
    def state_to_keras(self, spec, state):
        """The twin's states lead with the last output: the window's newest row."""
        inner = spec.get("cell")
        cell_state, attns, window = state
        return [window[:, -spec.units:], *inner.family.state_to_keras(inner, cell_state), attns,
                window]

    def state_from_keras(self, spec, states):
        inner = spec.get("cell")
        return (inner.family.state_from_keras(inner, list(states[1:-2])), states[-2], states[-1])
