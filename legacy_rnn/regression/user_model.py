"""Golden numbers of the user's own TF1 model, read from its checkpoint and `.meta` graph, and
the first op of that graph whose output moved when they change.

    python -m legacy_rnn.golden --record --checkpoint=CKPT --outputs=NAME[,NAME] \\
        --output=model.golden.json [--inputs_npz=FILE] [--loss=NAME] [--train_op=NAME]
    python -m legacy_rnn.golden --check model.golden.json

A record holds the inputs it was computed on (generated, or the user's `--inputs_npz`), the
named outputs, the gradients of a scalar loss with respect to every trainable variable (the
graph's `losses` collection, `--loss`, a scalar output, or else `sum(output * fixed weights)`),
the variables after one step of the train op (the `train_op` collection or `--train_op`), and
the environment. Beside it, `<name>.trace.npz` holds the value of every op output the run
computed, in execution order (TensorFlow's debug dumps, grappler off, one inter-op thread; ops
inside a loop once per iteration: a TF1 `while`'s, and a TF 2 `While`'s body as the runtime
lowers it): on CHANGED the check walks that order and names the first op whose output differs
beyond rounding, with its type and how its inputs compare (`rnn/while/lstm_cell/MatMul
(MatMul)` either way).

Generated inputs: a placeholder whose value indexes an embedding (Gather; or, as the whole-model
translation tells it, a converted block's EmbeddingWrapper inside its loop) gets ids within the
table's rows, one read as labels by a sparse softmax gets classes within the logits' width, any
other rank-1 integer placeholder lengths within the time dimension; booleans False, float
scalars 1.0 (keep probabilities); other floats N(0, 1). Unknown dimensions: batch 4, time 5.

Dropout (`tf.nn.dropout`, found as the converter finds it) passes its input through, as in
evaluation: it would draw new masks on every run. Any other unseeded random op the record
depends on is refused.
"""
import hashlib
import json
import os
import re
import zlib

import numpy as np

from legacy_rnn import atomic, lazy
from legacy_rnn.errors import UserError
from legacy_rnn.regression import drift

tf = lazy.module("tensorflow")

BATCH, TIME = 4, 5
KIND = "user_model"
TRACE_SUFFIX = ".trace.npz"
# Ops that only forward their input, seen through when asking what a placeholder feeds.
PASS_THROUGH = ("Identity", "Cast", "Reshape", "ExpandDims", "Squeeze", "Transpose",
                "StopGradient", "ToInt32", "ToInt64")
SAME_SHAPE = ("LogSoftmax", "Softmax", "Neg", "Relu", "Tanh", "Sigmoid")
GATHERS = ("GatherV2", "Gather", "ResourceGather")
SPARSE_LABELS = ("SparseSoftmaxCrossEntropyWithLogits",)


def _fix(path):
    return (f"Restore {path} from version control, or record it afresh with `python -m "
            "legacy_rnn.golden --record ...` after reviewing why it changed.")


def fingerprint(prefix):
    """sha256 of the checkpoint's files (index, data shards, `.meta`): a model that changed is
    not an environment that changed."""
    directory, base = os.path.split(os.path.abspath(prefix))
    digest = hashlib.sha256()
    files = sorted(f for f in os.listdir(directory or ".")
                   if f.startswith(base + ".") and (f.endswith(".index") or f.endswith(".meta")
                                                    or ".data-" in f))
    for name in files:
        digest.update(name[len(base):].encode())
        with open(os.path.join(directory, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _needs_v1_control_flow(graph_def):
    """A graph TF 1.x wrote (Enter/Exit loops, TensorArrayV3) is imported, differentiated and run
    with TF1 control flow: TF2's would build the wrong TensorArray gradients."""
    return any(node.op in ("Enter", "TensorArrayV3") for node in graph_def.node)


def _own_function_names(graph_def):
    """Renames the library functions of `graph_def` (a TF 2 loop's body and condition, a cond's
    branches) after a digest of their definitions, references included. TensorFlow keeps one
    definition per function name in the whole process, and two models saved by two programs can
    both hold an `rnn_while_body_92`: the second model's gradients (which rewrite its loop body
    under that name) would then fail with "a duplicate function ... where the definitions
    differ"."""
    functions = graph_def.library.function
    if not functions:
        return
    digest = hashlib.sha256(b"".join(f.SerializeToString(deterministic=True)
                                     for f in functions)).hexdigest()[:10]
    names = {f.signature.name: f"{f.signature.name}_{digest}" for f in functions}

    def rename(attr):
        if attr.func.name in names:
            attr.func.name = names[attr.func.name]
        for func in attr.list.func:
            if func.name in names:
                func.name = names[func.name]

    for nodes in [graph_def.node] + [f.node_def for f in functions]:
        for node in nodes:
            for attr in node.attr.values():
                rename(attr)
    for f in functions:
        f.signature.name = names[f.signature.name]
    for gradient in graph_def.library.gradient:
        gradient.function_name = names.get(gradient.function_name, gradient.function_name)
        gradient.gradient_func = names.get(gradient.gradient_func, gradient.gradient_func)


class Model:
    """The user's graph imported from `prefix.meta`, its variables restored from `prefix`."""

    def __init__(self, prefix):
        from legacy_rnn.conversion import metagraph, verify
        meta = metagraph.meta_path(prefix)
        if meta is None:
            raise UserError(f"{prefix}.meta does not exist: golden numbers of a model need the "
                            "graph the Saver writes beside the checkpoint. Pass --checkpoint= "
                            "the prefix of a checkpoint saved with its .meta (Saver.save writes "
                            "it unless write_meta_graph=False).")
        if not os.path.exists(prefix + ".index"):
            raise UserError(f"{prefix}.index does not exist: --checkpoint names a checkpoint by "
                            "its prefix (model.ckpt-100, not model.ckpt-100.index).")
        self.prefix, self.meta = prefix, meta
        meta_graph = metagraph.read_meta(meta)
        # A dropout draws new masks on every run: the golden numbers are of the model with its
        # dropout passing its input through, as it is evaluated.
        self.neutralised = verify.neutralise_dropout(meta_graph.graph_def)
        self.v1 = _needs_v1_control_flow(meta_graph.graph_def)
        _own_function_names(meta_graph.graph_def)
        self.graph = tf.Graph()
        with self._control_flow(), self.graph.as_default():
            try:
                self.saver = tf.compat.v1.train.import_meta_graph(meta_graph, clear_devices=True)
            except (ValueError, KeyError, tf.errors.OpError) as e:
                raise UserError(f"{meta} cannot be imported ({type(e).__name__}: "
                                f"{str(e).splitlines()[0][:200]}). It needs ops this TensorFlow "
                                "does not have, or it is damaged: restore the file the Saver "
                                "wrote.") from None
        if self.saver is None:
            raise UserError(f"{meta} holds no variables: nothing to restore from {prefix}.")

    def built(self, key, build):
        """What `build()` adds to the graph, once per `key` (the trace run fetches the very
        gradient ops the record run did)."""
        cache = self.__dict__.setdefault("_built", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _control_flow(self):
        import contextlib

        @contextlib.contextmanager
        def switched():
            if not self.v1:
                yield
                return
            tf.compat.v1.disable_control_flow_v2()
            try:
                yield
            finally:
                tf.compat.v1.enable_control_flow_v2()
        return switched()

    def tensor(self, name, what):
        name = name if ":" in name else name + ":0"
        try:
            return self.graph.get_tensor_by_name(name)
        except (KeyError, ValueError):
            stem = name.split(":")[0].rsplit("/", 1)[-1].lower()
            near = sorted(op.name for op in self.graph.get_operations()
                          if stem and stem in op.name.lower())[:6]
            raise UserError(f"{what} {name} is not a tensor of {self.meta}"
                            + (f" (ops with similar names: {', '.join(near)})" if near else "")
                            + ". Name an op's output as the graph names it ("
                            "tensor names end in :0 for an op's first "
                            "output).") from None

    def placeholders(self, fetches):
        """The Placeholder ops the `fetches` depend on, by name."""
        seen, found, frontier = set(), {}, [t.op for t in fetches]
        while frontier:
            op = frontier.pop()
            if op.name in seen:
                continue
            seen.add(op.name)
            if op.type == "Placeholder":
                found[op.name] = op
                continue
            frontier.extend(t.op for t in op.inputs)
            frontier.extend(op.control_inputs)
        return [found[k] for k in sorted(found)]

    def session(self, trace=False):
        config = tf.compat.v1.ConfigProto()
        if trace:
            # The trace is of the graph as written: no op renamed, folded or fused away.
            config.graph_options.rewrite_options.disable_meta_optimizer = True
            config.inter_op_parallelism_threads = 1
        sess = tf.compat.v1.Session(graph=self.graph, config=config)
        with self.graph.as_default():
            self.saver.restore(sess, self.prefix)
        return sess


# --- Inputs -------------------------------------------------------------------------------------

def _consumers(tensor):
    """The ops that read `tensor`, seen through PASS_THROUGH ops: [(op, input index)]."""
    out, frontier = [], [tensor]
    while frontier:
        t = frontier.pop()
        for op in t.consumers():
            if op.type in PASS_THROUGH:
                frontier.extend(op.outputs)
            else:
                out += [(op, i) for i, x in enumerate(op.inputs) if x is t]
    return out


def _static_dim(tensor, axis):
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    return dims[axis] if dims and len(dims) > axis else None


def _rows(table):
    """The first dimension of a gathered table: its static shape, or the variable's."""
    while True:
        if table.dtype != tf.resource and _static_dim(table, 0):
            return _static_dim(table, 0)
        op = table.op
        if op.type in ("VarHandleOp", "VariableV2", "Variable") and "shape" in op.node_def.attr:
            dims = op.node_def.attr["shape"].shape.dim
            return dims[0].size if dims and dims[0].size > 0 else None
        if op.type not in ("Identity", "ReadVariableOp") or not op.inputs:
            return None
        table = op.inputs[0]


def _classes(logits):
    """The width of the logits, seen back through reshapes that lost it."""
    while True:
        if _static_dim(logits, -1):
            return _static_dim(logits, -1)
        if logits.op.type not in PASS_THROUGH + SAME_SHAPE or not logits.op.inputs:
            return None
        logits = logits.op.inputs[0]


def _depth(tensor):
    """A OneHot's depth: a constant, or the last dimension of the logits it was read from."""
    value = tf.get_static_value(tensor)
    if value is not None:
        return int(value)
    op = tensor.op
    if op.type == "StridedSlice" and op.inputs[0].op.type == "Shape":
        return _classes(op.inputs[0].op.inputs[0])
    return None


def integer_range(op):
    """(low, high, what) for an integer placeholder: ids, classes, or lengths."""
    tensor = op.outputs[0]
    for consumer, index in _consumers(tensor):
        if consumer.type in GATHERS and index == 1:
            batch_dims = consumer.get_attr("batch_dims") if consumer.type == "GatherV2" else 0
            # batch_dims 1: the labels of the deterministic sparse softmax (op determinism on)
            rows = _classes(consumer.inputs[0]) if batch_dims else _rows(consumer.inputs[0])
            if rows:
                return 0, rows, f"ids of {consumer.inputs[0].op.name.split('/read')[0]}"
        if consumer.type in SPARSE_LABELS and index == 1:
            classes = _classes(consumer.inputs[0])
            if classes:
                return 0, classes, f"classes of {consumer.name}"
        if consumer.type == "OneHot" and index == 0:  # the deterministic sparse softmax
            depth = _depth(consumer.inputs[1])
            if depth:
                return 0, depth, f"classes of {consumer.name}"
    if tensor.shape.rank == 1 or _reshaped_to_one_row(tensor):
        return 1, None, "lengths"
    return None


def _reshaped_to_one_row(tensor):
    """Whether `tensor` is reshaped (or cast) into a vector: a tagger's word lengths [batch,
    words] made one length per word for the char-level RNN (guillaumegenthial/sequence_tagging's
    `tf.reshape(word_lengths, [s[0] * s[1]])`)."""
    frontier = [tensor]
    while frontier:
        value = frontier.pop()
        for op in value.consumers():
            if op.type in ("Reshape", "Cast", "Identity") and op.inputs[0] is value:
                if op.outputs[0].shape.rank == 1:
                    return True
                frontier.append(op.outputs[0])
    return False


def generate_inputs(model, placeholders, id_ranges=None):
    """{placeholder name: array}, deterministic (a numpy generator seeded by each name).
    `id_ranges`: {placeholder name: number of ids} that the caller knows (a converted block's
    EmbeddingWrapper reads them inside its loop)."""
    out, time = {}, TIME
    known_time = [_static_dim(op.outputs[0], 1) for op in placeholders
                  if op.outputs[0].shape.rank and op.outputs[0].shape.rank >= 2]
    known_time = [t for t in known_time if t]
    if known_time:
        time = min(known_time)
    for op in placeholders:
        tensor = op.outputs[0]
        rng = np.random.default_rng(zlib.crc32(op.name.encode()))
        dtype = tensor.dtype
        if tensor.shape.rank is None:
            raise UserError(f"Placeholder {op.name} has no known rank, so no input can be "
                            "generated for it. Pass its value with --inputs_npz=FILE (a numpy "
                            f".npz with an array named {op.name}).")
        shape = [d if d is not None else (BATCH if i == 0 else time)
                 for i, d in enumerate(tensor.shape.as_list())]
        if dtype == tf.bool:
            out[op.name] = np.zeros(shape, bool)
        elif dtype.is_floating and not shape:
            out[op.name] = np.asarray(1.0, dtype.as_numpy_dtype)
        elif dtype.is_floating:
            out[op.name] = rng.normal(size=shape).astype(dtype.as_numpy_dtype)
        elif dtype.is_integer:
            span = integer_range(op)
            if span is None and (id_ranges or {}).get(op.name):
                span = 0, id_ranges[op.name], "ids of a block's EmbeddingWrapper"
            if span is None:
                raise UserError(f"Placeholder {op.name} ({dtype.name}, shape {shape}) is "
                                "neither ids of an embedding, labels of a sparse softmax nor "
                                "lengths, so no input can be generated for it. Pass its value "
                                f"with --inputs_npz=FILE (an array named {op.name}).")
            low, high, _ = span
            high = time + 1 if high is None else high
            out[op.name] = rng.integers(low, high, size=shape).astype(dtype.as_numpy_dtype)
        else:
            raise UserError(f"Placeholder {op.name} is of type {dtype.name}, for which no "
                            "input can be generated. Pass its value with --inputs_npz=FILE.")
    return out


def read_inputs_npz(path, placeholders):
    try:
        with np.load(path, allow_pickle=False) as data:
            given = {k: data[k] for k in data.files}
    except (OSError, ValueError, zlib.error) as e:
        raise UserError(f"--inputs_npz={path} is not a readable .npz ({type(e).__name__}: "
                        f"{e}). Write it with numpy.savez(path, **{{placeholder name: array}})."
                        ) from None
    names = [op.name for op in placeholders]
    missing = [n for n in names if n not in given]
    if missing:
        raise UserError(f"--inputs_npz={path} has no array for placeholder(s) "
                        f"{', '.join(missing)} (it has {', '.join(sorted(given)) or 'none'}). "
                        "Add them, named as the graph names the placeholders.")
    return {n: given[n] for n in names}


# --- What a record computes ---------------------------------------------------------------------

def _loss(model, outputs, loss_name):
    """(scalar tensor, what it is)."""
    if loss_name:
        return model.tensor(loss_name, "--loss"), loss_name
    losses = model.graph.get_collection(tf.compat.v1.GraphKeys.LOSSES)
    if losses:
        return tf.add_n([tf.reduce_sum(t) for t in losses]), "the losses collection"
    scalar = [t for t in outputs if t.shape.rank == 0 and t.dtype.is_floating]
    if scalar:
        return scalar[0], scalar[0].name
    floating = [t for t in outputs if t.dtype.is_floating]
    if not floating:
        return None, None
    weights = [tf.constant(np.random.default_rng(zlib.crc32(t.name.encode())).normal(
        size=[d or 1 for d in (t.shape.as_list() if t.shape.rank else [])]).astype(
        t.dtype.as_numpy_dtype)) for t in floating]
    return (tf.add_n([tf.reduce_sum(t * w) for t, w in zip(floating, weights)]),
            "sum(output * fixed weights)")


def _train_op(model, name):
    if name:
        try:
            return model.graph.get_operation_by_name(name.split(":")[0])
        except (KeyError, ValueError):
            raise UserError(f"--train_op={name} is not an op of {model.meta}. Name the op "
                            "that minimize() returned, or leave the flag out.") from None
    ops = model.graph.get_collection(tf.compat.v1.GraphKeys.TRAIN_OP)
    return ops[0] if ops else None


RANDOM = ("RandomUniform", "RandomUniformInt", "RandomStandardNormal", "TruncatedNormal",
          "ParameterizedTruncatedNormal", "Multinomial", "RandomShuffle", "RandomGamma",
          "RandomPoisson", "RandomPoissonV2")


def unseeded_random(graph, fetches):
    """The names of the stateful random ops with no seed (seed = seed2 = 0) that `fetches`
    depend on, in the graph or in the functions its ops call: each run of them draws anew."""
    library = {f.signature.name: f for f in graph.as_graph_def().library.function}
    found, seen, called = [], set(), []
    frontier = [t.op if hasattr(t, "op") else t for t in fetches]

    def calls(attrs):
        for value in attrs.values():
            called.extend([value.func.name] if value.func.name else [])
            called.extend(f.name for f in value.list.func)

    def unseeded(node_def):
        return (node_def.op in RANDOM and node_def.attr["seed"].i == 0
                and node_def.attr["seed2"].i == 0)

    while frontier:
        op = frontier.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if unseeded(op.node_def):
            found.append(op.name)
        calls(op.node_def.attr)
        frontier.extend(t.op for t in op.inputs)
        frontier.extend(op.control_inputs)
    done = set()
    while called:
        name = called.pop()
        if name in done or name not in library:
            continue
        done.add(name)
        for node in library[name].node_def:
            if unseeded(node):
                found.append(f"{name}/{node.name}")
            calls(node.attr)
    return sorted(found)


def _build(model, output_names, loss_name, train_op_name):
    with model._control_flow(), model.graph.as_default():
        outputs = [model.tensor(n, "--outputs") for n in output_names]
        loss, loss_what = _loss(model, outputs, loss_name)
        variables = sorted(tf.compat.v1.trainable_variables(), key=lambda v: v.op.name)
        grads = tf.compat.v1.gradients(loss, variables) if loss is not None else []
        pairs = [(v, g) for v, g in zip(variables, grads) if g is not None]
        train = _train_op(model, train_op_name)
    random = unseeded_random(model.graph, outputs + [g for _, g in pairs]
                             + ([train] if train is not None else []))
    if random:
        raise UserError(f"{model.meta}: the outputs, gradients or train step depend on random "
                        f"op(s) with no seed ({', '.join(random[:4])}"
                        f"{', ...' if len(random) > 4 else ''}), which draw new values on every "
                        "run, so no golden number of them can be checked. Dropout built by "
                        "tf.nn.dropout is passed through already; seed the others (an op seed, "
                        "or tf.compat.v1.set_random_seed before building the graph) and save "
                        "the graph again, or name earlier --outputs.")
    return outputs, loss, loss_what, variables, pairs, train


def evaluate(model, output_names, inputs, loss_name=None, train_op_name=None, trace_dir=None):
    """[(label, array)] of the outputs, the gradients and one train step; with `trace_dir`, the
    forward and gradient run also dumps every op output there (`read_trace`)."""
    outputs, loss, loss_what, variables, pairs, train = model.built(
        (tuple(output_names), loss_name, train_op_name),
        lambda: _build(model, output_names, loss_name, train_op_name))
    feeds = {model.graph.get_tensor_by_name(n + ":0"): v for n, v in inputs.items()}
    fetches = outputs + ([loss] if loss is not None else []) + [g for _, g in pairs]
    options = None
    if trace_dir:
        from tensorflow.python.debug.lib import debug_utils
        options = tf.compat.v1.RunOptions()
        debug_utils.watch_graph(options, model.graph, debug_urls=["file://" + trace_dir])
    with model.session(trace=bool(trace_dir)) as sess:
        values = sess.run(fetches, feeds, options=options)
        quantities = [(f"output {t.name}", v) for t, v in zip(outputs, values)]
        if loss is not None:
            quantities.append((f"loss ({loss_what})", values[len(outputs)]))
            quantities += [(f"gradient wrt {v.op.name}", _dense(g))
                           for (v, _), g in zip(pairs, values[len(outputs) + 1:])]
        if train is not None and not trace_dir:
            sess.run(train, feeds)
            quantities += [(f"after one step of {train.name}: {v.op.name}", sess.run(v))
                           for v in variables]
    return quantities


def _dense(value):
    if hasattr(value, "indices"):  # IndexedSlicesValue: an embedding's gradient
        dense = np.zeros(value.dense_shape, value.values.dtype)
        np.add.at(dense, value.indices, value.values)
        return dense
    return value


# --- The trace ----------------------------------------------------------------------------------

def read_trace(trace_dir):
    """{"node:slot#k": array} (k: the k-th execution, in a loop) in execution order."""
    from tensorflow.python.debug.lib import debug_data
    dump = debug_data.DebugDumpDir(trace_dir)
    out, seen = {}, {}
    for datum in sorted(dump.dumped_tensor_data, key=lambda d: (d.timestamp, d.node_name)):
        value = datum.get_tensor()
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
            continue
        key = f"{datum.node_name}:{datum.output_slot}"
        seen[key] = seen.get(key, -1) + 1
        out[f"{key}#{seen[key]}"] = value
    return out


def trace(model, output_names, inputs, loss_name=None):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        evaluate(model, output_names, inputs, loss_name, trace_dir=tmp)
        return read_trace(tmp)


WHILE_OPS = ("While", "StatelessWhile")
# A TF 2 loop's body op as the runtime runs it (the loop lowered to frames, each body op renamed
# `<loop>/body/_<k>/<node>`), as the trace names it.
LOWERED = re.compile(r"^(?P<loop>.+?)/body/_(?P<k>\d+)/(?P<node>.+)$")


def op_table(graph):
    """{op name: (type, [input tensor names])}: what the localisation prints about an op; a TF 2
    loop's body ops as `<loop>/<node>` (`rnn/while/lstm_cell/MatMul`), their inputs likewise
    (those from the loop's own inputs left out)."""
    table = {op.name: (op.type, [t.name for t in op.inputs]) for op in graph.get_operations()}
    library = {f.signature.name: f for f in graph.as_graph_def().library.function}
    for op in graph.get_operations():
        body = library.get(op.get_attr("body").name) if op.type in WHILE_OPS else None
        for node in body.node_def if body is not None else ():
            refs = [r.split(":") for r in node.input if not r.startswith("^")]
            table.setdefault(f"{op.name}/{node.name}", (node.op, [
                f"{op.name}/{ref[0]}:{ref[-1]}" for ref in refs if len(ref) > 1]))
    return table


def _lowered(ops, name):
    """(`<loop>/<node>`, the runtime's `<loop>/body/_<k>/`) of a lowered loop's op name, or
    (name, None)."""
    match = LOWERED.match(name)
    if match and ops.get(match["loop"], ("",))[0] in WHILE_OPS:
        return f"{match['loop']}/{match['node']}", f"{match['loop']}/body/_{match['k']}/"
    return name, None


def first_beyond_rounding(ops, reference, found, exact):
    """One line naming the first op output (in the reference's execution order) that moved
    beyond rounding (any difference, where `exact`), or None. `ops`: `op_table`."""
    rtol, atol = (0.0, 0.0) if exact else (drift.ROUNDING_RTOL, drift.ROUNDING_ATOL)

    def moved(key):
        """The Difference of `key` where it is beyond the bound, else None."""
        if key not in found:
            return None
        d = drift.difference(key, reference[key], found[key], rtol=rtol, atol=atol)
        return d if (not d.identical if exact else not d.within_rounding) else None

    for key in reference:
        d = moved(key)
        if not d:
            continue
        name, rest = key.rsplit(":", 1)
        slot, iteration = rest.split("#")
        name, lowered = _lowered(ops, name)
        kind, input_names = ops.get(name, ("?", []))
        inputs = []
        for input_name in input_names:
            if lowered:  # the same frame's op: `<loop>/<node>` -> `<loop>/body/_<k>/<node>`
                loop = lowered.split("/body/_")[0]
                input_name = lowered + input_name[len(loop) + 1:]
            keys = [k for k in reference if k.startswith(f"{input_name}#")]
            if keys:
                inputs.append(moved(keys[min(int(iteration), len(keys) - 1)]) is None)
        inputs_text = ("its inputs identical" if inputs and all(inputs) else
                       "its inputs moved too" if inputs else "no traced inputs")
        where = f" (execution {int(iteration) + 1})" if int(iteration) else ""
        return (f"first beyond rounding: {name} ({kind}) output {slot}{where} "
                f"{d.max_abs:.1e}; {inputs_text}")
    return None


# --- Records ------------------------------------------------------------------------------------

def _encode(array):
    array = np.asarray(array)
    return {"dtype": array.dtype.name, "shape": list(array.shape), "values": array.ravel().tolist()}


def _decode(entry):
    return np.asarray(entry["values"], entry["dtype"]).reshape(entry["shape"])


def record(prefix, output_names, inputs_npz=None, loss=None, train_op=None):
    """A fresh golden record of the model at `prefix` and its trace."""
    from legacy_rnn.regression import golden
    model = Model(prefix)
    with model.graph.as_default():
        outputs = [model.tensor(n, "--outputs") for n in output_names]
    placeholders = model.placeholders(outputs)
    inputs = (read_inputs_npz(inputs_npz, placeholders) if inputs_npz else
              generate_inputs(model, placeholders))
    quantities = evaluate(model, output_names, inputs, loss, train_op)
    return {
        "kind": KIND, "checkpoint": os.path.abspath(prefix), "fingerprint": fingerprint(prefix),
        "outputs": list(output_names), "loss": loss, "train_op": train_op,
        "neutralised": model.neutralised,
        "inputs": {k: _encode(v) for k, v in inputs.items()},
        "environment": golden.environment(),
        "quantities": [[label, _encode(v)] for label, v in quantities],
        "recorded_with": "python -m legacy_rnn.golden --record",
        "promise": golden.PROMISE,
    }, trace(model, output_names, inputs, loss)


def write(path, fresh, trace_values):
    """The record and its trace beside it, each atomically."""
    tmp = path + TRACE_SUFFIX + ".tmp.npz"
    np.savez_compressed(tmp, **trace_values)
    os.replace(tmp, path + TRACE_SUFFIX)
    atomic.write_json(path, {**fresh, "trace_order": list(trace_values)})


def load(path):
    fix = _fix(path)
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror}). {fix}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not a golden file ({type(e).__name__}: {e}): truncated or "
                        f"edited. {fix}") from None
    keys = {"kind": str, "checkpoint": str, "fingerprint": str, "outputs": list, "inputs": dict,
            "environment": dict, "quantities": list, "trace_order": list}
    wrong = [k for k, kind in keys.items()
             if not isinstance(record, dict) or not isinstance(record.get(k), kind)]
    if not wrong and record["kind"] != KIND:
        wrong = ["kind"]
    if not wrong:
        try:
            for entry in [*record["inputs"].values(), *(q for _, q in record["quantities"])]:
                _decode(entry)
        except (TypeError, ValueError, KeyError):
            wrong = ["inputs or quantities"]
    if wrong:
        raise UserError(f"{path} is not a golden file of a user model: {', '.join(wrong)} "
                        f"missing or malformed. {fix}")
    return record


def _read_reference(trace_path, order):
    """The recorded trace {key: array}, or a string saying why there is none."""
    import zipfile
    if not os.path.exists(trace_path):
        return f"no trace at {trace_path}"
    try:
        with np.load(trace_path, allow_pickle=False) as data:
            return {k: data[k] for k in order if k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        return f"the trace {trace_path} is unreadable ({type(e).__name__}: {str(e)[:120]})"


def check(path, model=None):
    """(lines, ok) of a fresh run of the recorded model against `path`. `model`: a Model to run
    instead of the recorded checkpoint's graph (the tests' planted change)."""
    from legacy_rnn.regression import golden
    recorded = load(path)
    prefix = recorded["checkpoint"]
    if not os.path.exists(prefix + ".index"):
        raise UserError(f"{path} was recorded from {prefix}, which no longer exists. Put the "
                        "checkpoint back where it was, or record the golden file afresh.")
    if fingerprint(prefix) != recorded["fingerprint"]:
        raise UserError(f"The checkpoint {prefix} (or its .meta) changed since {path} was "
                        "recorded: that is a change of the model, not of the environment, and "
                        "no comparison would mean anything. Restore the checkpoint, or record "
                        "afresh.")
    model = model or Model(prefix)
    inputs = {k: _decode(v) for k, v in recorded["inputs"].items()}
    now = golden.environment()
    differs = tuple(sorted(k for k in set(now) | set(recorded["environment"])
                           if now.get(k) != recorded["environment"].get(k)))
    exact = not differs
    rtol, atol = (0.0, 0.0) if exact else (drift.ROUNDING_RTOL, drift.ROUNDING_ATOL)
    fresh = dict(evaluate(model, recorded["outputs"], inputs, recorded.get("loss"),
                          recorded.get("train_op")))
    differences = [drift.difference(label, _decode(q), fresh.get(label, np.full(1, np.nan)),
                                    rtol=rtol, atol=atol) for label, q in recorded["quantities"]]
    verdict = drift.verdict(differences, exact=exact)
    where = ("recorded in this environment: exact" if exact else
             f"recorded on another environment: {', '.join(differs)}")
    name = os.path.basename(path)
    lines = [f"{name}: {verdict} ({where})"]
    lines += [f"  - {d.quantity}: {d.describe()}" for d in differences if not d.identical]
    if verdict == drift.CHANGED:
        trace_path = path + TRACE_SUFFIX
        reference = _read_reference(trace_path, recorded["trace_order"])
        if isinstance(reference, str):
            lines.append(f"  ({reference}: the first op that moved is not known; the verdict "
                         "stands on the quantities above)")
        else:
            found = trace(model, recorded["outputs"], inputs, recorded.get("loss"))
            first = first_beyond_rounding(op_table(model.graph), reference, found, exact)
            lines.append(f"  {first or 'every traced op output within rounding'}")
    return lines, verdict != drift.CHANGED


# --- In a canary environment ----------------------------------------------------------------------

def run_recorded(paths, out):
    """Runs each golden file's model on its recorded inputs in this environment: `out` (.npz)
    gets "model/<file>|<quantity>" arrays, `out`.trace<i>.npz each model's trace, `out`.json the
    environment and each model's op table."""
    import time
    from legacy_rnn.regression import golden
    results, tables, seconds = {}, [], {}
    for i, path in enumerate(paths):
        start = time.perf_counter()
        recorded = load(path)
        model = Model(recorded["checkpoint"])
        inputs = {k: _decode(v) for k, v in recorded["inputs"].items()}
        case = f"model/{os.path.basename(path)}"
        for label, value in evaluate(model, recorded["outputs"], inputs, recorded.get("loss"),
                                     recorded.get("train_op")):
            results[f"{case}|{label}"] = np.asarray(value)
        values = trace(model, recorded["outputs"], inputs, recorded.get("loss"))
        np.savez_compressed(f"{out}.trace{i}.npz", **values)
        tables.append({"case": case, "order": list(values), "ops": op_table(model.graph)})
        seconds[case] = time.perf_counter() - start
    np.savez(out, **results)
    with open(out + ".json", "w") as f:
        json.dump({"environment": golden.environment(), "models": tables, "seconds": seconds},
                  f)


def localise(baseline_out, candidate_out, case):
    """The first op of `case`'s model that moved between two `run_recorded` outputs."""
    with open(baseline_out + ".json") as f:
        tables = json.load(f)["models"]
    (i, table), = [(i, t) for i, t in enumerate(tables) if t["case"] == case]
    with np.load(f"{baseline_out}.trace{i}.npz", allow_pickle=False) as data:
        reference = {k: data[k] for k in table["order"]}
    with np.load(f"{candidate_out}.trace{i}.npz", allow_pickle=False) as data:
        found = {k: data[k] for k in data.files}
    return first_beyond_rounding({k: tuple(v) for k, v in table["ops"].items()}, reference,
                                 found, exact=False)


def main(argv):
    import legacy_rnn  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
    from legacy_rnn.cli import programs
    programs.start_tensorflow()
    with programs.progress_lines_off():
        run_recorded(argv[2:], argv[1])
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv))
