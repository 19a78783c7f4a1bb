"""What a checkpoint's `.meta` graph (written by `tf.compat.v1.train.Saver` beside it) says that
the variables do not: the cells' forget_bias, cell_clip, proj_clip and activation.

The graph is read as a graph of ops, the main graph and the function library together: TF 1.x
wrote `dynamic_rnn`'s loop as Enter/Exit nodes in the main graph, TF 2.x as a `While` op whose body
is a library function, so a `While` input is linked to the body's argument. From a cell's kernel
variable the walk follows reads into the cell's MatMul, then the ops TF1's cells build:

    BasicLSTMCell / LSTMCell   MatMul -> BiasAdd -> Split(4): output 2 (f) + Const = forget_bias;
                               output 1 (j) -> the activation op; Minimum(c, Const) = cell_clip;
                               projection MatMul -> Minimum(Const) = proj_clip
    GRUCell                    candidate MatMul -> BiasAdd -> the activation op
    BasicRNNCell               MatMul -> BiasAdd -> the activation op (none: linear)
"""
import collections
import os

import numpy as np
import tensorflow as tf

from legacy_rnn.errors import UserError
from legacy_rnn.zoo import drivers

ACTIVATION_OPS = {"Tanh": "tanh", "Relu": "relu", "Sigmoid": "sigmoid", "Elu": "elu",
                  "Softsign": "softsign"}
PASS_THROUGH = {"Identity", "ReadVariableOp", "Enter", "Switch", "Merge", "IdentityN",
                "NextIteration", "Exit", "Placeholder"}
MAIN = ""


def meta_path(prefix):
    path = prefix + ".meta"
    return path if os.path.exists(path) else None


def read_graph(path):
    """The GraphDef of a `.meta` file; UserError naming it if it cannot be read."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import meta_graph_pb2
    meta = meta_graph_pb2.MetaGraphDef()
    try:
        with open(path, "rb") as f:
            meta.ParseFromString(f.read())
    except (OSError, DecodeError) as e:
        raise UserError(f"{path} is not a readable MetaGraphDef ({type(e).__name__}: "
                        f"{str(e)[:200]}). Move it away to convert with flags and TF1's defaults "
                        "for the options that are not variables (forget_bias, clips, "
                        "activation), or restore the file the Saver wrote.") from None
    return meta.graph_def


class GraphView:
    """Ops of the main graph and of every library function, with producer -> consumer edges."""

    def __init__(self, graph_def):
        self.nodes = {}
        self.consumers = collections.defaultdict(list)  # (fn, node) -> [(fn, node, input i)]
        self.inputs = {}  # (fn, node) -> [(fn, node, output index)]
        functions = {f.signature.name: f for f in graph_def.library.function}
        self._add(MAIN, graph_def.node, args=())
        for name, f in functions.items():
            self._add(name, f.node_def, args=[a.name for a in f.signature.input_arg],
                      outputs=f.signature.output_arg)
        # Control flow v2: a While's inputs are its body's arguments; an If's inputs after the
        # condition are each branch's arguments.
        for (fn, name), node in list(self.nodes.items()):
            if node is None:
                continue
            bodies = ([(node.attr["body"].func.name, 0)] if node.op in ("While", "StatelessWhile")
                      else [(node.attr[b].func.name, 1) for b in ("then_branch", "else_branch")]
                      if node.op in ("If", "StatelessIf") else [])
            for body, skip in bodies:
                if body not in functions:
                    continue
                args = [a.name for a in functions[body].signature.input_arg]
                for i, producer in enumerate(self.inputs[(fn, name)][skip:]):
                    if i < len(args):
                        self._edge(producer, (body, args[i]), 0)

    def _add(self, fn, node_defs, args, outputs=()):
        for arg in args:
            self.nodes[(fn, arg)] = None  # a function argument: a source
            self.inputs[(fn, arg)] = []
        for node in node_defs:
            self.nodes[(fn, node.name)] = node
        for node in node_defs:
            self.inputs[(fn, node.name)] = []
            for i, ref in enumerate(r for r in node.input if not r.startswith("^")):
                producer, index = self._parse(fn, ref)
                self.inputs[(fn, node.name)].append((fn, producer, index))
                self._edge((fn, producer, index), (fn, node.name), i)

    def _edge(self, producer, consumer, i):
        fn, name, index = producer
        self.consumers[(fn, name)].append((*consumer, i, index))

    @staticmethod
    def _parse(fn, ref):
        """`name:2` (a graph) or `name:output:2` / `arg` (a function body) -> (node, index)."""
        parts = ref.split(":")
        if len(parts) == 1:
            return parts[0], 0
        return parts[0], int(parts[-1])

    def op(self, key):
        node = self.nodes.get(key)
        return node.op if node is not None else None

    def next_ops(self, key, output=None):
        """[(key, input position)] of the ops consuming `key` (its output `output`, if given)."""
        return [((fn, name), i) for fn, name, i, index in self.consumers.get(key, [])
                if output is None or index == output]

    def reach(self, start, wanted):
        """Keys of the first ops of type in `wanted` reachable from `start` through reads."""
        seen, frontier, found = {start}, [start], []
        while frontier:
            key = frontier.pop(0)
            for nxt, _ in self.next_ops(key):
                if nxt in seen:
                    continue
                seen.add(nxt)
                op = self.op(nxt)
                if op in wanted:
                    found.append(nxt)
                elif op is None or op in PASS_THROUGH or op in ("While", "StatelessWhile", "If",
                                                                "StatelessIf"):
                    frontier.append(nxt)
        return found

    def const(self, key):
        """The scalar value of a Const op (through Identity), or None."""
        node = self.nodes.get(key)
        while node is not None and node.op == "Identity":
            key = self.inputs[key][0][:2]
            node = self.nodes.get(key)
        if node is None or node.op != "Const":
            return None
        value = tf.make_ndarray(node.attr["value"].tensor)
        # The shortest decimal that is this float32: 0.3, not 0.30000001192092896.
        return float(str(np.float32(value))) if np.ndim(value) == 0 else None

    def other_const(self, key, known):
        """The Const among `key`'s inputs that is not `known`."""
        for fn, name, _ in self.inputs.get(key, []):
            if (fn, name) != known:
                value = self.const((fn, name))
                if value is not None:
                    return value
        return None


def _matmul(view, variable):
    found = view.reach((MAIN, variable), {"MatMul"})
    return found[0] if found else None


def _activation(view, key):
    """The activation applied to `key`'s output: an op type, or linear when none is."""
    ops = [view.op(k) for k, _ in view.next_ops(key)]
    for op in ops:
        if op in ACTIVATION_OPS:
            return ACTIVATION_OPS[op]
    # No activation op: the value goes on as it is (to a Mul, a stack, or out of a cond branch).
    return "linear" if all(op in ("Mul", "Pack", "ConcatV2", "Identity", "Select", "SelectV2",
                                  "TensorListSetItem", "If", "StatelessIf", None) for op in ops) \
        else None


def cell_options(view, prefix, kind):
    """{option: value} the graph shows for the cell whose variables are under `prefix`."""
    options = {}
    kernel = f"{prefix}/candidate/kernel" if kind == "gru" else f"{prefix}/kernel"
    matmul = _matmul(view, kernel)
    if matmul is None:
        return options
    bias_add = next((k for k, _ in view.next_ops(matmul) if view.op(k) == "BiasAdd"), None)
    if bias_add is None:
        return options
    if kind in ("basic_lstm", "lstm"):
        split = next((k for k, _ in view.next_ops(bias_add) if view.op(k) == "Split"), None)
        if split is None:
            return options
        for add, _ in view.next_ops(split, output=2):
            if view.op(add) in ("Add", "AddV2"):
                value = view.other_const(add, split)
                if value is not None:
                    options["forget_bias"] = value
                    break
        activation = None
        for key, _ in view.next_ops(split, output=1):
            if view.op(key) in ACTIVATION_OPS:
                activation = ACTIVATION_OPS[view.op(key)]
            elif view.op(key) == "Mul" and activation is None:
                activation = "linear"
        if activation:
            options["activation"] = activation
        if kind == "lstm":
            # The cell was found: no clip op in it means no clip.
            options["cell_clip"] = None
            options["proj_clip"] = None
            projection = _matmul(view, f"{prefix}/projection/kernel")
            cell_fn = matmul[0]
            for key, node in view.nodes.items():
                if key[0] != cell_fn or node is None or node.op != "Minimum":
                    continue
                producer = view.inputs[key][0][:2]
                value = next((v for v in (view.const(k[:2]) for k in view.inputs[key][1:])
                              if v is not None), None)
                if value is None or not key[1].startswith(matmul[1].rsplit("/", 1)[0]):
                    continue
                if projection is not None and producer == projection:
                    options["proj_clip"] = value
                else:
                    options["cell_clip"] = value
    else:
        after = bias_add
        if kind == "ln_basic_rnn":  # v * inv + (beta - mean * inv), then the activation
            scaled = next((k for k, _ in view.next_ops(bias_add) if view.op(k) == "Mul"), None)
            after = next((k for k, _ in view.next_ops(scaled) if view.op(k) in ("Add", "AddV2")),
                         None) if scaled else None
        activation = _activation(view, after) if after else None
        if activation:
            options["activation"] = activation
    return options


# --- The dynamic drivers' tensors in an imported graph ---------------------------------------

def dynamic_scopes(block):
    """[(name scope of one dynamic_rnn call, 'fw'|'bw', first level, last level)]: where each
    direction (and level) of `block` ran its `dynamic_rnn` in the graph, had the graph run it with
    the dynamic driver of its direction."""
    return drivers.get(block.direction, "dynamic").graph_calls(block)


def driver_tensors(graph, scope):
    """(input tensor, sequence-length tensor or None, output tensor) of the `dynamic_rnn` that
    ran under name scope `scope` in `graph`, or None when the graph has no such call."""
    try:
        transpose = graph.get_operation_by_name(f"{scope}/transpose")
        output = graph.get_tensor_by_name(f"{scope}/transpose_1:0")
    except KeyError:
        return None
    try:
        lengths = graph.get_operation_by_name(f"{scope}/sequence_length").inputs[0]
    except KeyError:
        lengths = None
    return transpose.inputs[0], lengths, output


def is_dynamic(view, block):
    """Whether the graph ran `block` with the dynamic drivers (a loop in its scope)."""
    scope = dynamic_scopes(block)[0][0]
    return any(fn == MAIN and name.startswith(scope + "/") and node is not None and node.op in
               ("While", "StatelessWhile", "Enter") for (fn, name), node in view.nodes.items())
