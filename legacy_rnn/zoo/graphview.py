"""A TF1 graph (a `.meta` file's GraphDef) read as a graph of ops, and the walks the cell families
use to read their options and recognise themselves in it.

The main graph and the function library are read together: TF 1.x wrote `dynamic_rnn`'s loop as
Enter/Exit nodes in the main graph, TF 2.x as a `While` op whose body is a library function, so a
`While` input is linked to the body's argument. From a cell's kernel variable a walk follows reads
(Identity, ReadVariableOp, loop plumbing) to the first op that computes with it.
"""
import collections

import numpy as np
import tensorflow as tf

ACTIVATION_OPS = {"Tanh": "tanh", "Relu": "relu", "Sigmoid": "sigmoid", "Elu": "elu",
                  "Softsign": "softsign"}
PASS_THROUGH = {"Identity", "ReadVariableOp", "Enter", "Switch", "Merge", "IdentityN",
                "NextIteration", "Exit", "Placeholder"}
MAIN = ""


class GraphView:
    """Ops of the main graph and of every library function, with producer -> consumer edges."""

    def __init__(self, graph_def):
        self.nodes = {}
        self.consumers = collections.defaultdict(list)  # (fn, node) -> [(fn, node, input i)]
        self.inputs = {}  # (fn, node) -> [(fn, node, output index)]
        self.arg_sources = collections.defaultdict(list)  # (fn, arg) -> [caller's producer]
        self.callers = collections.defaultdict(list)  # fn -> [(caller fn, node, op type)]
        self.order = {}  # (fn, node) -> its position in its graph or function (build order)
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
                self.callers[body].append((fn, name, node.op))
                for i, producer in enumerate(self.inputs[(fn, name)][skip:]):
                    if i < len(args):
                        self._edge(producer, (body, args[i]), 0)
                        self.arg_sources[(body, args[i])].append(producer)

    def _add(self, fn, node_defs, args, outputs=()):
        for arg in args:
            self.nodes[(fn, arg)] = None  # a function argument: a source
            self.inputs[(fn, arg)] = []
        for position, node in enumerate(node_defs):
            self.nodes[(fn, node.name)] = node
            self.order[(fn, node.name)] = position
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

    def in_loop(self, fn, loop=None):
        """Whether function `fn` runs inside a while loop (a body, or called from one); with
        `loop`, inside the main graph's `While` op of that name."""
        seen = set()
        while fn != MAIN and fn not in seen:
            seen.add(fn)
            callers = self.callers.get(fn)
            if not callers:
                return False
            caller_fn, caller, op = callers[0]
            if op in ("While", "StatelessWhile") and (
                    loop is None or (caller_fn == MAIN and caller == loop)):
                return True
            fn = caller_fn
        return False

    def position(self, key):
        """Where the op `key` runs in the main graph's build order: its own position there, or
        that of the op calling its function (a cond branch), outermost first."""
        fn, name = key
        path = [self.order.get(key, 0)]
        while fn != MAIN and self.callers.get(fn):
            caller_fn, caller, _ = self.callers[fn][0]
            path.insert(0, self.order.get((caller_fn, caller), 0))
            fn = caller_fn
        return tuple(path)

    def main_tensor(self, producer):
        """The main-graph tensor name (`node:index`) a value inside a function comes from,
        following arguments out to their callers; None when it is computed inside."""
        fn, name, index = producer
        seen = set()
        while fn != MAIN:
            if (fn, name) in seen:
                return None
            seen.add((fn, name))
            node = self.nodes.get((fn, name))
            if node is not None and node.op == "Identity":  # (a neutralised dropout, too)
                fn, name, index = self.inputs[(fn, name)][0]
                continue
            if node is not None:
                return None  # computed by an op of the function, not one of its arguments
            sources = self.arg_sources.get((fn, name))
            if not sources:
                return None
            fn, name, index = sources[0]
        return f"{name}:{index}"

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
        value = self.const_array(key)
        # The shortest decimal that is this float32: 0.3, not 0.30000001192092896.
        return float(str(np.float32(value))) if value is not None and np.ndim(value) == 0 \
            else None

    def const_array(self, key):
        """The value of a Const op (through Identity) as an array, or None."""
        node = self.nodes.get(key)
        while node is not None and node.op == "Identity":
            key = self.inputs[key][0][:2]
            node = self.nodes.get(key)
        if node is None or node.op != "Const":
            return None
        return tf.make_ndarray(node.attr["value"].tensor)

    def other_const(self, key, known):
        """The Const among `key`'s inputs that is not `known`."""
        for fn, name, _ in self.inputs.get(key, []):
            if (fn, name) != known:
                value = self.const((fn, name))
                if value is not None:
                    return value
        return None


def first_use(view, variable, wanted):
    """The keys of the first ops of a type in `wanted` that read `variable` (by its name), in the
    model's computation: a training graph's gradient ops read the same value (the gradient of
    `x @ kernel` is `grad @ kernel^T`, another MatMul) and are left out."""
    return [key for key in view.reach((MAIN, variable), set(wanted)) if not is_gradient(key)]


def is_gradient(key):
    """Whether op `key` is one `tf.gradients` / an optimizer's `minimize` built: under a
    `gradients` (or `gradients_N`) name scope, or in a function it built (`..._grad...`)."""
    fn, name = key
    return (any(part == "gradients" or (part.startswith("gradients_") and part[10:].isdigit())
                for part in name.split("/")) or "gradients" in fn or "_grad_" in fn)


def matmul(view, variable):
    found = first_use(view, variable, {"MatMul"})
    return found[0] if found else None


def consumer(view, key, op_type, output=None):
    """The first op of type `op_type` (or one of a tuple) consuming `key`, or None."""
    types = (op_type,) if isinstance(op_type, str) else op_type
    return next((k for k, _ in view.next_ops(key, output) if view.op(k) in types), None)


def gate_split(view, kernel):
    """The Split of `matmul(..., kernel) + bias` into its gates (the LSTM and UGRNN cells'
    MatMul -> BiasAdd -> Split), or None when the graph does not show one."""
    key = matmul(view, kernel)
    bias_add = consumer(view, key, "BiasAdd") if key else None
    return consumer(view, bias_add, "Split") if bias_add else None


def added_constant(view, key, output):
    """The constant added to output `output` of `key` (a cell's forget_bias), or None."""
    for add, _ in view.next_ops(key, output=output):
        if view.op(add) in ("Add", "AddV2"):
            value = view.other_const(add, key)
            if value is not None:
                return value
    return None


def activation(view, key):
    """The activation applied to `key`'s output: an op type, or linear when none is."""
    ops = [view.op(k) for k, _ in view.next_ops(key)]
    for op in ops:
        if op in ACTIVATION_OPS:
            return ACTIVATION_OPS[op]
    # No activation op: the value goes on as it is (to a Mul, a stack, or out of a cond branch).
    return "linear" if all(op in ("Mul", "Pack", "ConcatV2", "Identity", "Select", "SelectV2",
                                  "TensorListSetItem", "If", "StatelessIf", None) for op in ops) \
        else None
