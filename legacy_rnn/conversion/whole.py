"""A whole TF1 model (`.meta` graph + checkpoint) -> one Keras 3 functional model, proven end to
end against the user's graph.

    python -m legacy_rnn.convert --checkpoint=CKPT --outputs=NAME[,NAME] --output=model.keras

The walk starts at the named output tensors and goes back to the placeholders. Each recurrent
block (`blockwise.read_blocks`: found from the variables, its options from the graph) is first
converted and checked on its own (`blockwise.convert_block`); where the walk reaches the tensor
its `dynamic_rnn` loop writes, the block's Keras layers take the place of the loop, fed the
translation of the tensor the loop reads and of its lengths. A block a static driver unrolled
(`static_rnn`, `static_bidirectional_rnn`, a hand-written time loop, legacy_seq2seq's
`rnn_decoder`) is replaced where the graph reads its step outputs: the tensors read from outside
its op scopes (`verify.static_reads`: where its cells' steps run, which need not be its variables'
scope), matched by value (on the graph's own step inputs, one row whole and the others shorter)
to one step of the Keras block's output or of one direction's part; the block runs once over the
stacked step inputs (the x_t its bottom steps read, in the order the graph made them) and each
matched tensor is its slice. Any other float tensor such a block reads from outside (its
`zero_state`) must be zero on the generated inputs, as the Keras block starts from zeros; a
state the program feeds or computes is refused. Every other op becomes a
`keras_graph.GraphOp` (the op's function in `keras.ops`) and every variable or constant a
`keras_graph.GraphVariable` holding its value. An op outside `keras_graph.OPS` is refused with
its name, its type and the path from the output to it.

The model is then run beside the imported graph (dropout passed through, as the converter does
everywhere) on generated inputs (`regression.user_model.generate_inputs`: ids within their
embedding, labels within the logits, lengths within the time dimension) or the user's
`--inputs_npz`: the outputs, and the gradients of `sum(output * fixed weights)` with respect to
every variable the model holds, must agree within `TOLERANCE`; else nothing is written.

A block's final state read by the ops around it (`dense(state.h)`, the concatenated final
states of a bidirectional encoder, `state[-1]` of a stack: a `dynamic_rnn`'s Exit tensors or a
static driver's last state) is matched the same way, by value, to one final state of one level's
Keras layer, and becomes that layer's state output.

A static bidirectional driver with `sequence_length` reads its backward steps before it
reverses them back within each length: those are matched to the Keras block's backward part
reversed the same way (`StepBoundary.reversed_within_lengths`).

Not translated yet (refused with a paragraph): a final state that is no single state of a level
(`state_is_tuple=False`'s concatenation), an initial state the program feeds or computes,
control flow other than the blocks' own.
"""
import collections
import dataclasses
import math
import os
import zlib

import numpy as np

from legacy_rnn import atomic, keras_cells, lazy
from legacy_rnn.errors import UserError
from legacy_rnn.facts import TOLERANCE

tf = lazy.module("tensorflow")
keras = lazy.module("keras")
verify = lazy.module("legacy_rnn.conversion.verify")  # which tensors a static block reads

# Inputs TF1 gives as tensors that the translation needs as constants: {op: {index: attribute}}
# (-1: the last input). Reshape's shape may also be computed (then it stays an input).
STATIC_INPUTS = {
    "Transpose": {1: "perm"}, "ConcatV2": {-1: "axis"}, "ExpandDims": {1: "dim"},
    "GatherV2": {2: "axis"}, "StridedSlice": {1: "begin", 2: "end", 3: "strides"},
    "Mean": {1: "axis"}, "Sum": {1: "axis"}, "Max": {1: "axis"}, "Prod": {1: "axis"},
    "ArgMax": {1: "axis"}, "Reshape": {1: "shape"}, "Split": {0: "axis"},
    "SplitV": {1: "sizes", 2: "axis"},
}
ATTRIBUTES = {
    "MatMul": ("transpose_a", "transpose_b"), "BatchMatMulV2": ("adj_x", "adj_y"),
    "Cast": ("DstT",), "Shape": ("out_type",), "Pack": ("axis",), "Unpack": ("num", "axis"),
    "Split": ("num_split",),
    "StridedSlice": ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                     "shrink_axis_mask"),
    "Squeeze": ("squeeze_dims",), "GatherV2": ("batch_dims",), "ResourceGather": ("batch_dims",),
    "ReverseSequence": ("seq_dim", "batch_dim"), "Range": ("Tidx",),
    "Mean": ("keep_dims",), "Sum": ("keep_dims",), "Max": ("keep_dims",), "Prod": ("keep_dims",),
    "ArgMax": ("output_type",),
}


def _keras_name(tf_name):
    return tf_name.replace("/", "__").replace(":", "_")


def _json(value):
    """An op attribute as a JSON value."""
    if isinstance(value, tf.dtypes.DType):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclasses.dataclass
class Boundary:
    """Where a converted block takes the place of a dynamic_rnn loop: the loop's time-major
    input and lengths, the block's layers of one half."""
    block_name: str
    model: object
    block: object
    half: str
    first: int
    last: int
    x: object  # the loop's time-major input tensor
    lengths: object  # its sequence-length tensor or None
    scope: str = ""  # the name scope of the dynamic_rnn call

    @property
    def sources(self):
        return [self.x] + ([self.lengths] if self.lengths is not None else [])


@dataclasses.dataclass
class StepBoundary:
    """Where a converted block takes the place of a static driver's unrolled steps: one tensor
    the graph reads from outside the block, found to be the block's output at `step` (the
    directions concatenated, zeros past each length)."""
    block_name: str
    model: object
    block: object
    xs: list  # the bottom level's forward input at each step
    lengths: object  # the sequence-length tensor or None
    step: int
    features: tuple = None  # (first, last + 1) of one direction's part, or None: all
    # The part reversed within each length first: static_bidirectional_rnn with
    # sequence_length reads its backward steps so, before reversing them back outside its scope.
    reversed_within_lengths: bool = False
    # A block the graph starts from a state it computes (a decoder from its encoder's final
    # state): (the Keras run taking it, `_initial_model`; the graph's state tensors, in the
    # order that run takes them), else None.
    initial: tuple = None

    @property
    def sources(self):
        return list(self.xs) + ([self.lengths] if self.lengths is not None else []) + (
            list(self.initial[1]) if self.initial else [])


@dataclasses.dataclass
class StateBoundary:
    """Where a converted block's final state takes the place of a tensor the graph reads from
    inside the block (a dynamic_rnn's Exit, a static driver's last state: each row's state at
    its length): state `index` of the Keras layer `layer` (in Keras's order: an LSTM's [h, c]),
    as the block's run `of` (the Boundary of the dynamic_rnn call that ran the level, or a
    StepBoundary of the static block) computes it. Matched by value."""
    of: object
    layer: str
    index: int

    @property
    def block(self):
        return self.of.block

    @property
    def model(self):
        return self.of.model

    @property
    def sources(self):
        return self.of.sources


class Translator:
    """The walk from the outputs back to the placeholders, building Keras tensors."""

    def __init__(self, graph, sess, boundaries, block_variables, placeholders):
        self.graph, self.sess = graph, sess
        self.boundaries = boundaries  # {loop output tensor name: Boundary}
        self.block_variables = block_variables  # {variable name: block prefix}
        for op in placeholders:
            if not op.outputs[0].shape.rank:
                raise UserError(f"The placeholder {op.name} has no batch dimension (shape "
                                f"{op.outputs[0].shape}): a Keras model's inputs are batches. "
                                "Name outputs that do not depend on it, or give it a default "
                                "(tf.compat.v1.placeholder_with_default) in the graph.")
        self.inputs = {op.name: keras.Input(tuple(op.outputs[0].shape.as_list()[1:]),
                                            dtype=op.outputs[0].dtype.name,
                                            name=_keras_name(op.name))
                       for op in placeholders}
        self.anchor = next(iter(self.inputs.values()), None)
        self.values, self.variables, self.layers = {}, {}, {}
        self.translated = collections.Counter()
        self.blocks_used = []

    def value(self, tensor, path):
        if tensor.name not in self.values:
            self.values[tensor.name] = self._translate(tensor, path + [tensor.op.name])
        return self.values[tensor.name]

    # --- one tensor ---

    def _translate(self, tensor, path):
        op = tensor.op
        if tensor.name in self.boundaries:
            boundary = self.boundaries[tensor.name]
            if isinstance(boundary, StateBoundary):
                return self._state(boundary, path)
            if isinstance(boundary, StepBoundary):
                return self._steps(boundary, path)
            return self._block(boundary, path)
        if op.type == "Placeholder" and op.name in self.inputs:
            return self.inputs[op.name]
        if op.type == "PlaceholderWithDefault":  # the value the graph runs with when not fed
            return self.value(op.inputs[0], path)
        variable = self._variable_of(tensor)
        if variable is not None:
            return self._variable(variable, tensor)
        if op.type == "Const":
            return self._constant(op)
        if op.type in verify.LOOP_OPS or "/while/" in op.name + "/":
            raise self._refusal(op, path, "it is part of a loop that is neither a recurrent "
                                "block's output nor one of its levels' final states (matched by "
                                "value): a state that is no single state of a level "
                                "(state_is_tuple=False concatenates them) and loops of the "
                                "program's own are not translated yet")
        from legacy_rnn import keras_graph
        if op.type not in keras_graph.OPS:
            raise self._refusal(op, path, "this translator does not know it")
        static = STATIC_INPUTS.get(op.type, {})
        attrs, dynamic, constants = {}, [], {}
        n = len(op.inputs)
        for i, source in enumerate(op.inputs):
            key = static.get(i, static.get(i - n))
            constant = tf.get_static_value(source) if self._foldable(source) else None
            if key and constant is not None:
                attrs[key] = _json(constant)
            elif key and op.type != "Reshape":
                raise self._refusal(op, path, f"its {key} is computed, not a constant")
            elif constant is not None and constant.dtype.kind in "iub" and constant.size <= 64:
                constants[len(dynamic) + len(constants)] = {"value": constant.tolist(),
                                                            "dtype": constant.dtype.name}
            else:
                dynamic.append(self.value(source, path))
        for name in ATTRIBUTES.get(op.type, ()):
            if name in op.node_def.attr:
                attrs[name] = _json(op.get_attr(name))
        if op.type == "Reshape" and "shape" not in attrs and dynamic_shape_is_known(op):
            attrs["shape"] = [d if d is not None else -1 for d in op.outputs[0].shape.as_list()]
            dynamic, constants = dynamic[:1], {}
        if not dynamic:  # every input a constant, yet not folded: not an op this walk meets
            raise self._refusal(op, path, "all its inputs are constants")
        self.translated[op.type] += 1
        specs = [(t.shape.as_list() if t.shape.rank is not None else None, t.dtype.name)
                 for t in op.outputs]
        layer = keras_graph.GraphOp(op.type, attrs, outputs=len(op.outputs),
                                    constants=constants, output_specs=specs,
                                    name=_keras_name(op.name))
        out = layer(dynamic if len(dynamic) > 1 else dynamic[0])
        if len(op.outputs) > 1:  # one layer for the op, whichever of its outputs is read
            for i, value in enumerate(out):
                self.values[op.outputs[i].name] = value
            return out[tensor.value_index]
        return out

    def _foldable(self, tensor):
        """Whether `tensor`'s value is a constant of the graph (not a variable's, which a model
        trains, nor one computed from a placeholder)."""
        return self._variable_of(tensor) is None and tensor.op.type not in (
            "Placeholder", "PlaceholderWithDefault")

    def _variable_of(self, tensor):
        """The variable op a tensor reads (a VariableV2, its `/read`, a resource variable's
        ReadVariableOp, the handle itself), or None."""
        op = tensor.op
        if op.type in verify.VARIABLES:
            return op
        if op.type in ("Identity", "ReadVariableOp") and op.inputs and \
                op.inputs[0].op.type in verify.VARIABLES:
            return op.inputs[0].op
        return None

    def _variable(self, variable, tensor, path=()):
        name = variable.name
        if name in self.block_variables:
            raise self._refusal(tensor.op, list(path) + [tensor.op.name],
                                f"it reads {name}, a variable of the recurrent block "
                                f"{self.block_variables[name]}/, through a tensor that is not "
                                "one the converted block replaces (its dynamic_rnn loop's "
                                "output, a static driver's step outputs or a level's final "
                                "state, matched by value): an output or a state that matched "
                                "none of the Keras block's")
        if name not in self.variables:
            # The variable's own value: a ref variable's output, a resource variable's read
            # that waits on nothing (a read inside a train step would need its feeds).
            value = self.sess.run(variable.outputs[0] if variable.type != "VarHandleOp"
                                  else variable.graph.get_tensor_by_name(_read_of(variable)))
            trainable = name in {v.op.name for v in self.graph.get_collection(
                tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)}
            from legacy_rnn import keras_graph
            layer = keras_graph.GraphVariable(value.shape, value.dtype.name,
                                              trainable=trainable, name=_keras_name(name))
            layer.value.assign(value)
            self.variables[name] = (layer, layer(self.anchor))
        return self.variables[name][1]

    def _constant(self, op):
        from legacy_rnn import keras_graph
        value = tf.make_ndarray(op.get_attr("value"))
        key = f"const:{op.name}"
        if key not in self.variables:
            layer = keras_graph.GraphVariable(value.shape, value.dtype.name, trainable=False,
                                              name=_keras_name(op.name))
            layer.value.assign(value)
            self.variables[key] = (layer, layer(self.anchor))
        return self.variables[key][1]

    def _half(self, boundary, path):
        """The outputs of the block's half that one dynamic_rnn call ran (`_half_model`: the
        sequence, batch-major, and each level's final states), computed once."""
        from legacy_rnn import keras_graph
        key = ("half", _half_name(boundary))
        if key not in self.values:
            x = keras_graph.GraphOp("Transpose", {"perm": [1, 0, 2]},
                                    name=_keras_name(boundary.x.op.name) + "__batch_major")(
                self.value(boundary.x, path))
            lengths = (self.value(boundary.lengths, path) if boundary.lengths is not None
                       else None)
            if lengths is not None and boundary.lengths.dtype != tf.int32:
                lengths = keras_graph.GraphOp("Cast", {"DstT": "int32"}, name=_keras_name(
                    boundary.lengths.op.name) + "__int32")(lengths)
            half = _half_model(boundary, x.shape[-1], lengths is not None)
            self.values[key] = half([x, lengths] if lengths is not None else x)
            self.blocks_used.append(boundary)
        return self.values[key]

    def _block(self, boundary, path):
        """The block's Keras layers in place of one dynamic_rnn loop (time-major in and out, as
        the loop's own tensors are), as a model of its own: `<block>_<half>`."""
        from legacy_rnn import keras_graph
        out = self._half(boundary, path)["outputs"]
        return keras_graph.GraphOp("Transpose", {"perm": [1, 0, 2]},
                                   name=_half_name(boundary) + "__time_major")(out)

    def _run_static(self, boundary, path):
        """The whole Keras block (`_with_states`) run once over the stacked inputs of a static
        driver's steps."""
        from legacy_rnn import keras_graph
        key = ("steps", boundary.block_name)
        if key not in self.values:
            name = _keras_name(boundary.block_name)
            x = keras_graph.GraphOp("Pack", {"axis": 1}, name=f"{name}__inputs")(
                [self.value(t, path) for t in boundary.xs])
            if boundary.xs[0].shape.rank == 1:  # an EmbeddingWrapper's ids, one per step
                x = keras_graph.GraphOp("ExpandDims", {"dim": -1}, name=f"{name}__ids")(x)
            if boundary.lengths is not None:
                lengths = self.value(boundary.lengths, path)
                if boundary.lengths.dtype != tf.int32:
                    lengths = keras_graph.GraphOp("Cast", {"DstT": "int32"},
                                                  name=f"{name}__lengths")(lengths)
            else:
                lengths = keras_graph.GraphOp("FullLengths", name=f"{name}__full_lengths")(x)
            self.values[("lengths", boundary.block_name)] = lengths
            if boundary.initial:
                run, tensors = boundary.initial
                self.values[key] = run([x, lengths, *[self.value(t, path) for t in tensors]])
            else:
                self.values[key] = _with_states(boundary.block, boundary.model)([x, lengths])
            self.blocks_used.append(boundary)
        return self.values[key]

    def _steps(self, boundary, path):
        """Step `boundary.step` of the whole Keras block run over the stacked steps' inputs."""
        from legacy_rnn import keras_graph
        out = self._run_static(boundary, path)["outputs"]
        t, part = boundary.step, boundary.features
        first, last = part if part else (0, 0)
        name = f"{_keras_name(boundary.block_name)}__step_{t}" + (
            f"_features_{first}_{last}" if part else "")
        if boundary.reversed_within_lengths:
            key = ("reversed", boundary.block_name)
            if key not in self.values:
                self.values[key] = keras_graph.GraphOp(
                    "ReverseSequence", {"seq_dim": 1, "batch_dim": 0},
                    name=f"{_keras_name(boundary.block_name)}__reversed")(
                    [out, self.values[("lengths", boundary.block_name)]])
            out, name = self.values[key], name + "_reversed"
        return keras_graph.GraphOp("StridedSlice", {
            "begin": [0, t, first], "end": [0, t + 1, last], "strides": [1, 1, 1],
            "begin_mask": 1, "end_mask": 1 | (0 if part else 4), "ellipsis_mask": 0,
            "new_axis_mask": 0, "shrink_axis_mask": 2}, name=name)(out)

    def _state(self, boundary, path):
        """Final state `boundary.index` of the level `boundary.layer`."""
        run = (self._run_static(boundary.of, path) if isinstance(boundary.of, StepBoundary)
               else self._half(boundary.of, path))
        return run[boundary.layer][boundary.index]

    def _refusal(self, op, path, why):
        shown = path if len(path) <= 8 else path[:4] + ["..."] + path[-3:]
        return UserError(
            f"{op.name} ({op.type}) cannot be translated: {why}. It sits on the path "
            f"{' <- '.join(shown)} from the output back to the inputs. Name an earlier output "
            "with --outputs (one computed before this op), or convert the recurrent blocks "
            "alone (convert --checkpoint=CKPT --output=DIR, without --outputs). Translated: "
            f"{', '.join(sorted(k for k in _known_ops() if k != 'FullLengths'))}.")


def _half_name(boundary):
    return f"{boundary.block_name}_{boundary.half}_{boundary.first}_{boundary.last}"


def _half_model(boundary, input_size, with_lengths):
    """One half (levels first..last) of a converted block: `[x, lengths]` (or `x`) -> {outputs:
    the sequence, zeros past each length, as the loop writes it; each level's layer name: its
    final states}."""
    x = keras.Input((None, input_size), name="x")
    lengths = keras.Input((), dtype="int32", name="seqlen") if with_lengths else None
    mask = keras_cells.length_mask(x, lengths) if with_lengths else None
    levels = boundary.block.levels if boundary.half == "fw" else boundary.block.backward_levels
    states = {}

    def run_levels(out):
        for k in range(boundary.first, boundary.last + 1):
            name = f"{boundary.half}_{k}"
            step, *states[name] = boundary.model.get_layer(name)(out, mask=mask)
            out = keras.ops.add(step, out) if levels[k].residual else step
        return out
    from legacy_rnn.zoo import blocks as zoo_blocks
    out = zoo_blocks.keras_wrapped(boundary.block, boundary.half, x, run_levels, boundary.first,
                                   boundary.last, model=boundary.model)
    if with_lengths:
        out = keras_cells.zero_past_length(out, lengths)
    return keras.Model([x, lengths] if with_lengths else x, {"outputs": out, **states},
                       name=_half_name(boundary))


def _with_states(block, model):
    """The functional Keras block `model` with each level's final states as outputs too:
    {outputs, layer name: its states} (the same layers, called once)."""
    return keras.Model(model.inputs, {"outputs": model.outputs[0], **{
        name: list(model.get_layer(name).output[1:]) for name, _, _ in block.cells()}},
        name=f"{model.name}_with_states")


def _known_ops():
    from legacy_rnn import keras_graph
    return keras_graph.OPS


def _read_of(handle_op):
    """The name of a ReadVariableOp of a resource variable (the tensor holding its value)."""
    reads = [c for c in handle_op.outputs[0].consumers() if c.type == "ReadVariableOp"]
    for consumer in sorted(reads, key=lambda c: len(c.control_inputs)):
        return consumer.outputs[0].name
    raise UserError(f"The variable {handle_op.name} is never read in the graph.")


def dynamic_shape_is_known(op):
    """Whether a Reshape's computed shape is known to the graph's shape inference with at most
    one unknown dimension (then it becomes a constant with -1 there)."""
    shape = op.outputs[0].shape
    return shape.rank is not None and sum(d is None for d in shape.as_list()) <= 1


# --- The whole conversion ----------------------------------------------------------------------

@dataclasses.dataclass
class WholeResult:
    model: object
    blocks: list  # [BlockResult]
    translated: dict  # {op type: count}
    variables: list
    forward_difference: float
    gradient_difference: float
    inputs: dict  # {placeholder: description}
    neutralised: list
    checked_with: dict = None  # {placeholder: the array the check fed}
    graph_outputs: list = None  # the user's graph's outputs on them

    @property
    def ok(self):
        return max(self.forward_difference, self.gradient_difference) <= TOLERANCE

    def record(self, checkpoint, outputs):
        return {"checkpoint": checkpoint, "outputs": outputs, "tolerance": TOLERANCE,
                "load_with": "legacy_rnn.keras_graph",
                "inputs": self.inputs, "blocks": [b.record() for b in self.blocks],
                "ops_translated": self.translated, "variables": self.variables,
                "largest_difference": {"outputs": self.forward_difference,
                                       "gradients": self.gradient_difference},
                "verified_against": "the user's graph (the .meta), dropout passed through",
                "neutralised": self.neutralised}


def to_keras_model(checkpoint, output_names, inputs_npz=None, seed=0):
    """(WholeResult) of the TF1 model at `checkpoint` up to `output_names`, checked end to end."""
    from legacy_rnn.conversion import blockwise, metagraph
    from legacy_rnn.regression import user_model
    prefix, meta, _, read, old_names = blockwise.read_blocks(checkpoint, none_is_fine=True)
    if meta is None:
        raise UserError(f"{prefix}.meta does not exist"
                        + (" (or reads pre-TF-1.2 names)" if old_names else "")
                        + ": a whole model is translated from its graph. Without it, convert "
                        "the recurrent blocks alone (convert --checkpoint=CKPT --output=DIR).")
    rng = np.random.default_rng(seed)
    blocks = [blockwise.convert_block(f, block, options, prefix, meta, old_names, rng)
              for f, block, options in read]
    failed = [r.block.prefix for r, _ in blocks if not r.ok]
    if failed:
        raise UserError(f"The recurrent block(s) {', '.join(failed)} failed their own check "
                        "against the graph; nothing was written. Run convert without --outputs "
                        "to see the block report.")
    model = user_model.Model(prefix)
    graph = model.graph
    with graph.as_default():
        outputs = [model.tensor(n, "--outputs") for n in output_names]
    boundaries, block_variables = {}, {}
    view = metagraph.GraphView(graph.as_graph_def())
    for result, keras_block in blocks:
        for name in result.found.variables:
            block_variables[name] = result.block.prefix
        for scope, half, first, last in metagraph.dynamic_scopes(result.block):
            found = metagraph.driver_tensors(graph, scope)
            if found is None:
                continue
            x, lengths, out = found
            boundaries[out.name] = Boundary(result.found.name, keras_block, result.block, half,
                                            first, last, x, lengths, scope)
        boundaries.update(_sequence_op_boundaries(graph, view, result, keras_block))
    every = model.placeholders(outputs)
    # A block that reads ids (an EmbeddingWrapper) looks them up inside its loop, where the
    # generator does not follow them: the placeholders its loop input comes from are its ids.
    id_ranges = {name: b.block.id_classes for b in boundaries.values()
                 if getattr(b, "x", None) is not None and b.block.id_classes
                 for name in _ancestors([b.x])}
    given = (user_model.read_inputs_npz(inputs_npz, every) if inputs_npz else
             user_model.generate_inputs(model, every, id_ranges))
    needed = _ancestors(outputs)
    for result, keras_block in blocks:
        if not any(b.block is result.block for b in boundaries.values()):
            boundaries.update(_step_boundaries(model, needed, result, keras_block, given, view))
    boundaries.update(_final_states(model, needed, boundaries, given))
    placeholders = _placeholders(outputs, boundaries)
    inputs = {op.name: given[op.name] for op in placeholders}
    # The variables' values are read in a session of their own: the gradients built later
    # extend a TF2 while loop with outputs, which a session that has run it refuses. Not
    # `with sess:` (that would make the user's graph the default one, where Keras 3 would
    # create its variables and run its eager calls).
    sess = model.session()
    try:
        translator = Translator(graph, sess, boundaries, block_variables, placeholders)
        if translator.anchor is None:
            raise UserError(f"The outputs {', '.join(output_names)} depend on no placeholder: "
                            "nothing to translate into a model's inputs.")
        keras_outputs = [translator.value(t, []) for t in outputs]
    finally:
        sess.close()
    keras_model = keras.Model({_keras_name(n): t for n, t in translator.inputs.items()},
                              keras_outputs if len(keras_outputs) > 1 else keras_outputs[0],
                              name="tf1_model")
    forward, gradient, original = _compare(model, outputs, translator, keras_model, inputs)
    described = {op.name: _describe(op, inputs[op.name]) for op in placeholders}
    return WholeResult(keras_model, [r for r, _ in blocks], dict(translator.translated),
                       sorted(k for k in translator.variables if not k.startswith("const:")),
                       forward, gradient, described, model.neutralised, inputs,
                       [np.asarray(o) for o in original])


def _ancestors(outputs):
    """The names of the ops the `outputs` depend on (control inputs included)."""
    seen, frontier = set(), [t.op for t in outputs]
    while frontier:
        op = frontier.pop()
        if op.name not in seen:
            seen.add(op.name)
            frontier += [t.op for t in op.inputs] + list(op.control_inputs)
    return seen


def _sequence_op_boundaries(graph, view, result, keras_block):
    """{tensor name: Boundary} of a block whose cells run as one op over the sequence
    (contrib's LSTMBlockFusedCell: `BlockLSTM`; `verify.sequence_tensors`): the top level's
    time-major h takes the block's place, computed from the bottom op's time-major input over
    every step. (contrib's cell zeroes the outputs past each length after the op, and that
    stays an op of the graph; past the longest length the op's own h is not the Keras layer's,
    and the end-to-end check would say so.)"""
    sequences = verify.sequence_tensors(graph, view, result.block)
    depth = len(result.block.levels)
    return {h.name: Boundary(result.found.name, keras_block, result.block, half, 0, depth - 1,
                             x, None, "")
            for half, (x, h, _) in (sequences or {}).items()}


def _step_boundaries(model, needed, result, keras_block, given, view):
    """{tensor name: StepBoundary} of a block the graph runs step by step (a static driver):
    each tensor that ops outside the block, on the way to the outputs (`needed`: op names),
    read from inside it, matched by value to one step of the Keras block's output on the
    graph's own inputs at its bottom level. A tensor that matches no step (a final state) gets
    no boundary: the walk refuses it if it gets there. (A training graph's gradient ops, which
    read every step, are not on the way.)"""
    graph, block = model.graph, result.block
    reads = verify.static_reads(graph, block, view)
    if reads is None:
        return {}
    inside, xs, lengths = reads.inside, reads.xs, reads.lengths
    read_outside = sorted({t.name for op in graph.get_operations()
                           if op.name in needed and not op.name.startswith(inside)
                           for t in op.inputs if t.op.name.startswith(inside)
                           and t.dtype.is_floating and t.shape.rank == 2})
    fetched = [graph.get_tensor_by_name(n) for n in read_outside]
    feeds = {graph.get_tensor_by_name(n + ":0"): v for n, v in given.items()}
    batch = next((np.shape(v)[0] for v in given.values() if np.ndim(v) >= 1), 1)
    # Lengths fed for the match: the first row whole (every step's output tells the steps
    # apart), the others shorter (a final state, copied through past a length, matches none).
    length_value = len(xs) - np.arange(batch) % len(xs)
    if lengths is not None:
        feeds[lengths] = length_value.astype(lengths.dtype.as_numpy_dtype)
    with model.session() as sess:
        x_values, values, states = sess.run([xs, fetched, reads.states], feeds)
    x = np.stack(x_values, axis=1)
    if x.ndim == 2:  # an EmbeddingWrapper's ids, one per step: [batch, time, 1]
        x = x[:, :, None]
    if lengths is None:
        length_value = np.full(x.shape[0], x.shape[1])
    length_value = length_value.astype(np.int32)
    initial = None
    if any(np.any(value != 0) for value in states):
        initial = _initial_states(block, keras_block, reads.states, states, x, length_value,
                                  values)
        run = initial[0]([x, length_value, *[states[reads.states.index(t)]
                                               for t in initial[1]]])
    else:
        run = _with_states(block, keras_block)([x, length_value])
    out = np.asarray(run["outputs"])
    # Each step of the block's output, and of each direction's part (a static bidirectional
    # driver's graph concatenates them outside its scope).
    parts = [None]
    if block.backward_levels:
        width = block.levels[-1].cell.output_size
        parts += [(0, width), (width, out.shape[-1])]
    columns = [(t, part, out[:, t, part[0]:part[1]] if part else out[:, t], False)
               for part in parts for t in range(out.shape[1])]
    if block.backward_levels and lengths is not None:
        # The backward direction's own steps, on the input reversed within each length.
        flipped = np.asarray(keras_cells.reverse_within_length(out, length_value))
        columns += [(t, parts[2], flipped[:, t, parts[2][0]:parts[2][1]], True)
                    for t in range(out.shape[1])]
    found, unmatched = {}, {}
    for name, value in zip(read_outside, values):
        close = [(t, part, flip) for t, part, column, flip in columns
                 if column.shape == value.shape
                 and float(np.max(np.abs(value - column))) <= TOLERANCE]
        if len(close) == 1:
            t, part, flip = close[0]
            found[name] = StepBoundary(result.found.name, keras_block, block, xs, lengths, t,
                                       part, flip, initial)
        else:
            unmatched[name] = value
    run_of = StepBoundary(result.found.name, keras_block, block, xs, lengths, None,
                          initial=initial)
    states = [(run_of, layer, i, np.asarray(v)) for layer, _, _ in block.cells()
              for i, v in enumerate(run[layer])]
    found.update(_matched_states(unmatched, states))
    return found


def _matched_states(values, states):
    """{tensor name: StateBoundary} for each of `values` ({name: the graph's value}) equal
    within TOLERANCE to exactly one of `states` ([(run, layer, index, the Keras value)])."""
    found = {}
    for name, value in values.items():
        close = [(run, layer, i) for run, layer, i, state in states
                 if state.shape == value.shape and np.max(np.abs(value - state)) <= TOLERANCE]
        if len(close) == 1:
            found[name] = StateBoundary(*close[0])
    return found


def _final_states(model, needed, boundaries, given):
    """{tensor name: StateBoundary} of the dynamic_rnn calls among `boundaries`: each float
    [batch, features] tensor under a call's name scope that an op on the way to the outputs
    (`needed`) reads from outside it (an Exit of its loop, or the Identity after a TF2 While),
    matched by value on the inputs `given` to one final state of one level that call ran. A
    tensor that matches none stays unmatched: the walk refuses it if it gets there."""
    calls = [b for b in boundaries.values() if isinstance(b, Boundary)]
    graph = model.graph
    reads = {}
    for call in calls:
        inside = call.scope + "/"
        for op in graph.get_operations():
            if op.name in needed and not op.name.startswith(inside):
                reads.update({t.name: t for t in op.inputs if t.op.name.startswith(inside)
                              and t.name not in boundaries and t.dtype.is_floating
                              and t.shape.rank == 2})
    if not reads:
        return {}
    names = sorted(reads)
    feeds = {graph.get_tensor_by_name(n + ":0"): v for n, v in given.items()}
    with model.session() as sess:
        values, xs, lengths = sess.run([[reads[n] for n in names], [c.x for c in calls],
                                        [c.lengths if c.lengths is not None else c.x
                                         for c in calls]], feeds)
    states = []
    for call, x, length in zip(calls, xs, lengths):
        x = np.transpose(x, (1, 0, 2))
        with_lengths = call.lengths is not None
        run = _half_model(call, x.shape[-1], with_lengths)(
            [x, np.asarray(length, np.int32)] if with_lengths else x)
        states += [(call, layer, i, np.asarray(v)) for layer, vs in run.items()
                   if layer != "outputs" for i, v in enumerate(vs)]
    return _matched_states(dict(zip(names, values)), states)


def _state_slots(block, keras_block):
    """[(layer name, Keras state index, width)] of every level's states, in the block's order
    (read off the Keras block's own call of each layer)."""
    return [(name, i, state.shape[-1]) for name, _, _ in block.cells()
            for i, state in enumerate(keras_block.get_layer(name).output[1:])]


def _initial_model(block, keras_block, input_size, slots):
    """The forward static block's Keras layers taking an initial state: `[x, lengths, *states]`
    (`slots`: `_state_slots`, the order of `states`) -> {outputs (its output wrappers' included,
    zeros past each length), each layer's final states}."""
    x = keras.Input((None, input_size), name="x")
    lengths = keras.Input((), dtype="int32", name="seqlen")
    inputs = {(name, i): keras.Input((width,), name=f"initial_{name}_{i}")
              for name, i, width in slots}
    mask = keras_cells.length_mask(x, lengths)
    states = {}

    def run_levels(out):
        for k, level in enumerate(block.levels):
            name = f"fw_{k}"
            initial = [inputs[(n, i)] for n, i, _ in slots if n == name]
            step, *states[name] = keras_block.get_layer(name)(out, mask=mask,
                                                                initial_state=initial)
            out = keras.ops.add(step, out) if level.residual else step
        return out
    from legacy_rnn.zoo import blocks as zoo_blocks
    out = zoo_blocks.keras_wrapped(block, "fw", x, run_levels, model=keras_block)
    out = keras_cells.zero_past_length(out, lengths)
    return keras.Model([x, lengths, *[inputs[(name, i)] for name, i, _ in slots]],
                       {"outputs": out, **states}, name=f"{keras_block.name}_from_a_state")


MAX_STATE_ORDERS = 120


def _initial_states(block, keras_block, tensors, values, x, lengths, read_values):
    """(`_initial_model`, the state tensors in its order) of a static block the graph starts from
    a state it computes: which tensor is which level's which state is matched by value, the one
    order of `tensors` under which the Keras block's step outputs match the most of the tensors
    the graph reads from it (`read_values`). UserError where none or several do."""
    import itertools
    slots = _state_slots(block, keras_block)
    refusal = (f"The block {block.prefix}/ starts from a state that is not zero: its ops read "
               f"{', '.join(t.name for t in tensors)} (largest value "
               f"{max(float(np.max(np.abs(v))) for v in values):.3g} on the generated inputs), "
               "which are neither step inputs nor zero_state's zeros, and {why}. Save the graph "
               "you convert with cell.zero_state as the state (or placeholder_with_default("
               "zero_state)), or convert the recurrent blocks alone (convert --checkpoint=CKPT "
               "--output=DIR, without --outputs): each level is a Keras RNN layer, which takes "
               "initial_state when called.")
    fed = [t.name for t in tensors if t.op.type in ("Placeholder", "PlaceholderWithDefault")]
    if fed:
        raise UserError(refusal.format(why=(
            f"{', '.join(fed)} {'is' if len(fed) == 1 else 'are'} fed: the translation takes a "
            "block's initial state only from what the graph computes (another block's final "
            "state), not from a placeholder yet")))
    if block.backward_levels or len(slots) != len(tensors) or \
            math.factorial(len(tensors)) > MAX_STATE_ORDERS:
        raise UserError(refusal.format(why=(
            f"the translation takes an initial state only into a forward block whose levels' "
            f"{len(slots)} states they are (here {len(tensors)})")))
    run = _initial_model(block, keras_block, x.shape[-1], slots)
    widths = [width for _, _, width in slots]
    scores = []
    for order in itertools.permutations(range(len(tensors))):
        if any(np.shape(values[j])[-1] != width for j, width in zip(order, widths)):
            continue
        out = np.asarray(run([x, lengths, *[values[j] for j in order]])["outputs"])
        scores.append((sum(any(out[:, t].shape == np.shape(v) and float(np.max(np.abs(
            out[:, t] - v))) <= TOLERANCE for t in range(out.shape[1])) for v in read_values),
            order))
    best = max((score for score, _ in scores), default=0)
    orders = [order for score, order in scores if score == best]
    # Orders that differ only in tensors of equal value (two levels' zero_state zeros) are one:
    # generated inputs give distinct tensors distinct values.
    if orders and all(all(np.array_equal(values[i], values[j]) for i, j in zip(order, orders[0]))
                      for order in orders):
        orders = orders[:1]
    if best == 0 or len(orders) != 1:
        raise UserError(refusal.format(why=(
            "no order of those tensors as the levels' initial states makes the Keras block "
            "compute the steps the graph reads" if best == 0 else
            "several orders of them as the levels' initial states compute the same steps")))
    return run, [tensors[j] for j in orders[0]]


def _placeholders(outputs, boundaries):
    """The placeholders the outputs depend on, the replaced loops seen as their inputs."""
    seen, found = set(), {}
    frontier = [t for t in outputs]
    while frontier:
        tensor = frontier.pop()
        if tensor.name in seen:
            continue
        seen.add(tensor.name)
        if tensor.name in boundaries:
            frontier += boundaries[tensor.name].sources
            continue
        op = tensor.op
        if op.type in ("Placeholder", "PlaceholderWithDefault"):
            if op.type == "Placeholder":
                found[op.name] = op
            else:
                frontier.append(op.inputs[0])
            continue
        frontier += list(op.inputs)
    return [found[k] for k in sorted(found)]


def _describe(op, value):
    return f"{op.outputs[0].dtype.name} {list(op.outputs[0].shape)} (checked with shape " \
           f"{list(np.shape(value))})"


def _compare(model, outputs, translator, keras_model, inputs):
    """(largest output difference, largest gradient difference, the graph's outputs) between
    the imported graph and the Keras model on `inputs`. The gradients are of sum(output * fixed
    weights) with respect to every variable the Keras model holds: its GraphVariables and the
    blocks' weights (mapped to their TF1 names by the block's own weight conversion)."""
    from legacy_rnn.regression.user_model import _dense
    from legacy_rnn.zoo import blocks
    with tf.GradientTape() as tape:
        got = keras_model({_keras_name(name): inputs[name] for name in translator.inputs})
        got = got if isinstance(got, (list, tuple)) else [got]
        floating = [i for i, t in enumerate(outputs) if t.dtype.is_floating]
        weights = [np.random.default_rng(zlib.crc32(outputs[i].name.encode())).normal(
            size=np.shape(got[i])).astype(np.float32) for i in floating]
        keras_loss = (tf.add_n([tf.reduce_sum(tf.cast(got[i], tf.float32) * w)
                                for i, w in zip(floating, weights)]) if floating else None)
    trainable = {name: layer.value for name, (layer, _) in translator.variables.items()
                 if not name.startswith("const:") and layer.trainable}
    used = {id(b.block): b for b in translator.blocks_used}.values()
    block_layers = [(b, name, b.model.get_layer(name))
                    for b in used for name in b.block.layer_names()]
    found = {}
    if keras_loss is not None:
        own, layer_grads = tape.gradient(keras_loss, (list(trainable.values()), [
            list(layer.trainable_weights) for _, _, layer in block_layers]))
        found = dict(zip(trainable, own))
        by_block = {}
        for (b, name, _), grads in zip(block_layers, layer_grads):
            # (A lookup's gradient comes as IndexedSlices: made dense.)
            by_block.setdefault(id(b.block), (b.block, {}))[1][name] = [
                np.asarray(tf.convert_to_tensor(g)) for g in grads]
        for block, grads in by_block.values():
            found.update(blocks.from_keras(block, grads, gradients=True))
    # The graph's side: its loss built with the same weights (fed), before a session runs it.
    with model._control_flow(), model.graph.as_default():
        fed = [tf.compat.v1.placeholder(tf.float32, w.shape) for w in weights]
        names = sorted(found)
        graph_grads = []
        if fed:
            loss = tf.add_n([tf.reduce_sum(tf.cast(outputs[i], tf.float32) * w)
                             for i, w in zip(floating, fed)])
            graph_grads = tf.compat.v1.gradients(
                loss, [model.graph.get_operation_by_name(n).outputs[0] for n in names])
    pairs = [(n, g) for n, g in zip(names, graph_grads) if g is not None]
    feeds = {model.graph.get_tensor_by_name(n + ":0"): v for n, v in inputs.items()}
    feeds.update(zip(fed, weights))
    with model.session() as sess:
        original, expected = sess.run([outputs, [g for _, g in pairs]], feeds)
    forward = max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
                  if np.size(a) else 0.0 for a, b in zip(original, got))
    gradient = 0.0
    for (name, _), value in zip(pairs, expected):
        mine = found[name]
        value = _dense(value)
        mine = np.zeros(np.shape(value)) if mine is None else np.asarray(
            tf.convert_to_tensor(mine))
        gradient = max(gradient, float(np.max(np.abs(value - mine))))
    unmatched = [n for n, g in zip(names, graph_grads) if g is None and found[n] is not None
                 and np.any(np.asarray(tf.convert_to_tensor(found[n])))]
    if unmatched:  # the Keras model depends on a variable the graph's outputs do not
        gradient = float("inf")
    return forward, gradient, original


def write(result, checkpoint, outputs, output):
    """The model (atomically) and `output`.json beside it."""
    from legacy_rnn.conversion.convert import save_atomically
    save_atomically(result.model, output)
    atomic.write_json(output + ".json", result.record(checkpoint, outputs))
    return os.path.abspath(output)


def export(result, output_names, export_dir, overwrite=False):
    """A SavedModel of the translated model (`keras.export.ExportArchive`), signature
    "serving_default" as the serving work writes it: one input per placeholder (its Keras name:
    `/` written `__`), the batch open, one output per name in `output_names` (Keras names
    too). Loaded back before it is kept and called on the inputs the conversion checked: its
    outputs must equal the user's graph's within TOLERANCE, else nothing is kept."""
    import keras

    from legacy_rnn.training import serving
    model = result.model
    specs = [tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=t.name) for t in model.inputs]
    names = [_keras_name(n.split(":")[0]) for n in output_names]

    def serve(*tensors):
        out = model({spec.name: t for spec, t in zip(specs, tensors)})
        return dict(zip(names, out if isinstance(out, (list, tuple)) else [out]))

    serving.check_export_dir(export_dir, overwrite)
    with atomic.directory(export_dir, "--export_dir", create=False) as target:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(serving.SIGNATURE, serve, input_signature=specs)
        archive.write_out(target, verbose=False)
        signature = tf.saved_model.load(target).signatures[serving.SIGNATURE]
        given = {_keras_name(k): v for k, v in result.checked_with.items()}
        served = signature(**{spec.name: tf.constant(given[spec.name]) for spec in specs})
        largest = max(float(np.max(np.abs(np.asarray(served[n], np.float64) - expected)))
                      if np.size(expected) else 0.0
                      for n, expected in zip(names, result.graph_outputs))
        if not largest <= TOLERANCE:
            raise UserError(f"The SavedModel written for --export_dir={export_dir} serves "
                            f"outputs {largest:.2e} away from the graph's (tolerance "
                            f"{TOLERANCE:g}); it was not kept. Please report the graph.")
    return largest
