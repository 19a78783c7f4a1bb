"""Checking a converted block against the user's own graph, and (only without a `.meta`) against
this project's rebuild of it.

Against the graph: the `.meta` is imported with dropout neutralised, its checkpoint restored, and
the block's cells are fed random inputs where the graph itself computes them:

- cells the graph steps one by one (`static_rnn`, `static_bidirectional_rnn`, tf.contrib's
  `stack_bidirectional_rnn`, and hand-written loops such as PTB's `cell(x[:, t], state)`): every
  step of a cell multiplies `concat([x_t, h_prev]) @ kernel`. The bottom level's `x_t` of each
  direction is fed (the backward one in reverse), and the top level's state after step `t` is
  read where step `t + 1` takes it: the outputs of steps 1 .. T-1 of every direction (the last
  step's is read nowhere inside the recurrence) at full lengths.
- `dynamic_rnn` calls: each direction and level's call, found by its name scope, is fed its
  input and lengths and its output sequence read.

Dropout is neutralised, never trusted: `nn.dropout` subgraphs (a Python-float DropoutWrapper keeps
them in a saved training graph) are rewritten to pass their input through; a scalar float
placeholder (a keep probability) is fed 1.0 and a bool placeholder (a training flag) False. What
was neutralised is reported.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from legacy_rnn import keras_cells, zoo
from legacy_rnn.conversion import metagraph
from legacy_rnn.errors import UserError
from legacy_rnn.zoo import blocks, graphview
from legacy_rnn.zoo.graphview import MAIN, GraphView

BATCH, TIME = 5, 7
VARIABLES = ("VariableV2", "Variable", "VarHandleOp")
LOOP_OPS = ("Enter", "Exit", "NextIteration", "Merge", "Switch", "LoopCond", "While",
            "StatelessWhile")


def random_case(rng, input_size, batch=BATCH, time=TIME, classes=None):
    """(x, lengths): x normal, or ids below `classes` (a block reading ids); lengths from 0 to
    time, the first whole."""
    x = (rng.integers(0, classes, (batch, time, input_size)).astype(np.int32) if classes else
         rng.normal(size=(batch, time, input_size)).astype(np.float32))
    lengths = rng.integers(0, time + 1, batch).astype(np.int32)
    lengths[0] = time
    return x, lengths


# --- Importing the user's graph ----------------------------------------------------------------

def _dropout_scopes(nodes):
    """{scope: output node} of the `nn.dropout` subgraphs among `nodes` (a GraphDef's or a library
    function's NodeDefs): a scope named dropout[_N] holding a RandomUniform and a Shape of the
    value dropped, whose one node read from outside the scope (gradients aside) is its output."""
    by_name = {n.name: n for n in nodes}
    scopes = set()
    for node in nodes:
        if node.op == "RandomUniform":
            parts = node.name.split("/")
            for i in range(len(parts) - 1, -1, -1):
                if parts[i] == "dropout" or parts[i].startswith("dropout_"):
                    scopes.add("/".join(parts[:i + 1]))
                    break
    found = {}
    for scope in scopes:
        inside = {name for name in by_name if name.startswith(scope + "/")}
        # A training graph's gradient of the dropout reads its mask and scaling too.
        read = {ref.split(":")[0].lstrip("^") for n in nodes if n.name not in inside
                and not graphview.is_gradient((graphview.MAIN, n.name))
                for ref in n.input if not ref.startswith("^")}
        outputs = sorted(inside & read)
        value = _dropped_value(scope, inside, by_name)
        if len(outputs) == 1 and value is not None:
            found[scope] = (by_name[outputs[0]], value)
    return found


def _dropped_value(scope, inside, by_name):
    """The input ref of the value a dropout scope drops: what its Shape reads, or (a shape folded
    into a constant) the outside, non-constant operand of its scaling Mul / RealDiv."""
    shape = by_name.get(f"{scope}/Shape")
    if shape is not None and shape.op == "Shape" and shape.input:
        return shape.input[0]
    for name in sorted(inside):
        node = by_name[name]
        if node.op not in ("Mul", "RealDiv", "Div", "TrueDiv"):
            continue
        for ref in node.input:
            source = ref.split(":")[0]
            if source not in inside and not ref.startswith("^") and (
                    by_name.get(source) is None or by_name[source].op != "Const"):
                return ref
    return None


def neutralise_dropout(graph_def):
    """Rewrites each `nn.dropout` of `graph_def` (its functions' bodies included) into an
    Identity of the value it drops; [what was neutralised]."""
    neutralised = []
    bodies = [graph_def.node] + [f.node_def for f in graph_def.library.function]
    for nodes in bodies:
        for scope, (output, value) in _dropout_scopes(nodes).items():
            dtype = output.attr["T"].type if "T" in output.attr else None
            output.op = "Identity"
            del output.input[:]
            output.input.append(value)
            for key in list(output.attr):
                del output.attr[key]
            if dtype is not None:
                output.attr["T"].type = dtype
            neutralised.append(f"dropout {scope} passes its input through")
    return neutralised


def import_neutralised(meta):
    """(graph, its GraphView, saver, [what was neutralised]) of the `.meta` file, dropout
    rewritten away."""
    meta_graph = metagraph.read_meta(meta)
    neutralised = neutralise_dropout(meta_graph.graph_def)
    graph = tf.Graph()
    with graph.as_default():
        try:
            saver = tf.compat.v1.train.import_meta_graph(meta_graph, clear_devices=True)
        except (ValueError, KeyError, tf.errors.OpError) as e:
            raise UserError(f"{meta} cannot be imported ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]}). Move it away to convert without "
                            "it.") from None
    if saver is None:
        raise UserError(f"{meta} holds no variables to restore. Move it away to convert without "
                        "it.")
    return graph, GraphView(meta_graph.graph_def), saver, neutralised


def neutral_feeds(fetches, fed, batch, time, notes):
    """Values for the placeholders the `fetches` depend on past the `fed` tensors: keep
    probabilities 1.0, training flags False, lengths full, ids 0, other floats zeros (past the
    block's inputs, a float batch is an initial state, char-rnn's and the PTB tutorial's fed
    state: the converted block starts from zeros unless it is given one)."""
    feeds, seen = {}, set()
    frontier = [t.op for t in fetches]
    fed_ops = {t.op for t in fed if len(t.op.outputs) == 1}
    fed_names = {t.name for t in fed}
    while frontier:
        op = frontier.pop()
        if op.name in seen or op in fed_ops:
            continue
        seen.add(op.name)
        if op.type in ("Placeholder", "PlaceholderWithDefault"):
            tensor = op.outputs[0]
            value = _neutral(tensor, batch, time, op.type == "PlaceholderWithDefault")
            if value is not None:
                feeds[tensor] = value
                if tensor.dtype == tf.bool or (tensor.dtype.is_floating
                                               and tensor.shape.rank == 0):
                    notes.append(f"{op.name} fed {value!r}")
                elif tensor.dtype.is_floating:
                    notes.append(f"{op.name} fed zeros (an initial state)")
            if op.type == "Placeholder":
                continue
        frontier.extend(t.op for t in op.inputs if t.name not in fed_names)
        frontier.extend(op.control_inputs)
    return feeds


def _neutral(tensor, batch, time, has_default):
    rank = tensor.shape.rank
    if tensor.dtype == tf.bool:
        return False
    if tensor.dtype.is_floating and rank == 0:
        return 1.0
    if has_default:
        return None
    dims = list(tensor.shape) if rank is not None else [None, None, None]
    shape = [d if d is not None else (batch if i == 0 else time) for i, d in enumerate(dims)]
    if tensor.dtype.is_integer:
        return np.full(shape, time if rank == 1 else 0, tensor.dtype.as_numpy_dtype)
    return np.zeros(shape, tensor.dtype.as_numpy_dtype)


# --- Cells stepped one by one --------------------------------------------------------------------

def cell_steps(view, family, prefix):
    """[(x_t, h_prev) as main-graph tensor names, None where one is computed inside a cond branch]
    of every step of the cell under `prefix` (`family.steps_in_graph`), in the order the graph
    builds them (a static driver's cond branches followed out to their callers); None when a
    while loop runs the cell or its steps are not the family's."""
    steps = family.steps_in_graph(view, prefix)
    if steps is None or any(view.in_loop(key[0]) for key, _, _ in steps):
        return None
    return [(x_t, h_prev) for _, x_t, h_prev in sorted(
        (view.position(key), view.main_tensor(x), view.main_tensor(h)) for key, x, h in steps)]


def stepped_tensors(graph, view, block):
    """{half: (bottom x_t tensors, top h_t tensors for t < T-1)} of a block the graph steps one
    by one; None when it does not (a loop, or steps that are not concat([x, h]) @ kernel)."""
    cells = {name: (level, prefix) for name, level, prefix in block.cells()}
    depth = len(block.levels)
    out = {}
    for half in block.runner.halves:
        levels = [cell_steps(view, level.cell.family, prefix) for k in range(depth)
                  for level, prefix in [cells[f"{half}_{k}"]]]
        steps = [levels[0], levels[-1]]
        reading, writing = _outermost_wrappers(view, block, half)
        if reading == [] or writing == []:  # a wrapper whose steps the graph does not show
            return None
        if reading is not None or writing is not None:
            steps = [reading or steps[0], writing or steps[1]]
        if any(not s for s in steps) or len(steps[0]) != len(steps[1]) or len(steps[0]) < 2:
            return None
        ys = steps[1] if writing else steps[1][1:]
        if any(x is None for x, _ in steps[0]) or any(h is None for _, h in ys):
            return None
        # Each level's state entering its first step (where the graph shows it): the Keras
        # block starts from zeros, so the graph must too.
        out[half] = ([graph.get_tensor_by_name(x) for x, _ in steps[0]],
                     [graph.get_tensor_by_name(h) for _, h in ys],
                     [graph.get_tensor_by_name(s[0][1]) for s in levels if s and s[0][1]])
    return out


def _outermost_wrappers(view, block, half):
    """[(x_t, None)] of the outermost input-side wrapper of `half` and [(None, y_t)] of its
    outermost output-side one (main-graph tensor names; None inside a cond branch), each None
    where the block has no such wrapper, [] where the graph does not show its steps. The
    verification then feeds the block's inputs there and reads its outputs there, wrappers
    included."""
    found = {}
    for _, spec, prefix, h, _ in block.wrapped():
        side = spec.wrapper.side
        if h != half or side in found:
            continue
        steps = spec.wrapper.steps_in_graph(view, prefix)
        if not steps or any(view.in_loop(key[0]) for _, key in steps):
            found[side] = []
        elif side == "input":
            found[side] = [(view.main_tensor(x), None) for x, _ in steps]
        else:
            found[side] = [(None, f"{key[1]}:0" if key[0] == MAIN else None)
                           for _, key in steps]
    return found.get("input"), found.get("output")


def _top_outputs(model, block):
    """A Keras model of each half's outputs: its outermost output-side wrapper's, else its top
    level's own (before any residual)."""
    import keras
    depth = len(block.levels)
    outputs = []
    for half in block.runner.halves:
        writing = [name for name, spec, _, h, _ in block.wrapped()
                   if h == half and spec.wrapper.side == "output"]
        outputs.append(model.get_layer(writing[0]).output if writing else
                       model.get_layer(f"{half}_{depth - 1}").output[0])
    return keras.Model(model.inputs, outputs)


def run_steps(sess, tensors, rng, notes, block, view):
    """(x, the graph's top-level states per half) with the bottom inputs fed from x (ids below
    the block's classes where it reads ids, each step's `[batch]` or `[batch, 1]`). A block the
    graph starts from a state it computes (a decoder from its encoder's final state) is started
    from zeros, as the Keras block starts: the other float tensors its ops read from outside it
    (`static_reads`: its initial state) are fed zeros (said in `notes`). (None, a reason) where that does not zero its first
    state."""
    time = len(tensors["fw"][0])
    first = tensors["fw"][0][0]
    batch = (first.shape[0] if first.shape.rank else None) or BATCH
    if block.id_classes:
        x = rng.integers(0, block.id_classes, size=(batch, time, 1)).astype(np.int64)
    else:
        x = rng.normal(size=(batch, time, first.shape[-1])).astype(np.float32)
    feed = {}
    for half, (xs, _, _) in tensors.items():
        for t, tensor in enumerate(xs):
            step = x[:, t] if half == "fw" else x[:, time - 1 - t]
            feed[tensor] = (step.reshape(step.shape[:tensor.shape.rank]).astype(
                tensor.dtype.as_numpy_dtype) if block.id_classes else step)
    fetches = {half: (hs, initial) for half, (_, hs, initial) in tensors.items()}
    feed.update(neutral_feeds([t for hs, initial in fetches.values() for t in hs + initial],
                              list(feed), batch, time, notes))
    got = sess.run(fetches, feed)
    if _started(got):
        reads = static_reads(sess.graph, block, view)
        entering = reads.states if reads is not None else []
        if not entering or any(t.shape[1] is None for t in entering):
            return None, ("the graph starts the block from a state it computes (a decoder's "
                          "from its encoder's), and the Keras block starts from zeros")
        feed.update({t: np.zeros((batch, t.shape[1]), t.dtype.as_numpy_dtype)
                     for t in entering})
        got = sess.run(fetches, feed)
        if _started(got):
            return None, ("the graph starts the block from a state it computes (a decoder's "
                          "from its encoder's) where feeding zeros does not reach")
        notes.append(f"the state entering {block.prefix}/ from outside it "
                     f"({', '.join(sorted(t.name for t in entering))}) fed zeros, as the Keras "
                     "block starts")
    return x.astype(np.float32), {half: hs for half, (hs, _) in got.items()}


def _started(got):
    """Whether some level's first step reads a state that is not zeros."""
    return any(np.any(state != 0) for _, initial in got.values() for state in initial)


@dataclasses.dataclass
class StaticReads:
    """What a static driver's block reads from outside itself, as `static_reads` finds it."""
    inside: tuple  # the name scopes of its ops (prefixes ending in "/")
    xs: list  # its bottom level's forward input at each step
    lengths: object  # the sequence-length tensor it reads, or None
    states: list  # other float [batch, n] tensors it reads: initial states (zeros or refused)


def static_reads(graph, block, view=None):
    """(StaticReads) of a block a static driver unrolled, or None where the graph shows no step
    input for it. The scopes: the block's own and each op scope its cells' steps ran in
    (legacy_seq2seq's `rnn_decoder(..., scope="rnnlm")` after a `variable_scope("rnnlm")` of
    the user's runs them under `rnnlm_1/rnnlm/`). The inputs: the x_t each step of the bottom
    cell concatenates with its h_prev (`verify.stepped_tensors`), so that an initial state read
    from outside is not taken for one; where the family's steps are not concat([x, h])
    MatMuls, every float tensor read from outside the scopes (and no state is told apart). The
    lengths: what the driver's Min reads."""
    view = view or GraphView(graph.as_graph_def())
    scopes = {f"{block.prefix}/"}
    for _, level, prefix in block.cells():
        for (fn, name, *_), _, _ in level.cell.family.steps_in_graph(view, prefix) or ():
            at = f"/{name}".find(f"/{block.prefix}/")
            if fn == MAIN and at > 0:
                scopes.add(name[:at] + f"{block.prefix}/")
    inside = tuple(sorted(scopes))
    stepped = stepped_tensors(graph, view, block) or {}

    def read_from(x):
        # Back out of the driver's own plumbing (TF1 control flow's cond of a static driver
        # with lengths: the step reads its x through a Switch) to the tensor it reads.
        while x.op.name.startswith(inside) and x.op.type in ("Switch", "RefSwitch", "Identity"):
            x = x.op.inputs[0]
        return x

    xs = [read_from(x) for x in stepped.get("fw", ((),))[0]]
    # The backward direction's step inputs (the input reversed): not initial states.
    backward = {read_from(x).name for x in stepped.get("bw", ((),))[0]}
    read = _step_inputs(graph, inside)
    # An x_t computed inside the scope (the PTB tutorial's inputs[:, t, :]) is translated as
    # any other tensor; one inside a loop is not a step input.
    if not xs or any(x.op.type in LOOP_OPS for x in xs):
        xs = read
    if not xs:
        return None
    minima = sorted((op for op in graph.get_operations()
                     if op.name.startswith(inside) and op.type == "Min"), key=lambda op: op.name)
    lengths = minima[0].inputs[0] if minima else None
    while lengths is not None and lengths.op.name.startswith(inside) and \
            lengths.op.type in ("Identity", "Cast", "ToInt32"):
        lengths = lengths.op.inputs[0]
    ids = {t.name for t in xs} | backward
    return StaticReads(inside, xs, lengths, [t for t in read if t.name not in ids])


def _step_inputs(graph, inside):
    """The tensors a static driver's block (its ops under `inside`) reads from outside as its
    per-step inputs: float [batch, features] tensors that are not variables or constants, in
    the order the graph made them (one unstack's outputs by index; per-step slices as the
    user's loop created them)."""
    position = {op.name: i for i, op in enumerate(graph.get_operations())}
    found = {}
    for op in graph.get_operations():
        if not op.name.startswith(inside):
            continue
        for t in op.inputs:
            source = t.op
            if source.name.startswith(inside) or not t.dtype.is_floating or \
                    t.shape.rank != 2 or source.type in VARIABLES + ("Const",) or (
                    source.type in ("Identity", "ReadVariableOp") and source.inputs
                    and source.inputs[0].op.type in VARIABLES):
                continue
            found[t.name] = t
    return sorted(found.values(), key=lambda t: (position[t.op.name], t.value_index))


def compare_steps(model, block, x, values):
    lengths = np.full(x.shape[0], x.shape[1], np.int32)
    tops = _top_outputs(model, block)([x, lengths])
    tops = tops if isinstance(tops, (list, tuple)) else [tops]
    largest = 0.0
    for half, top in zip(block.runner.halves, tops):
        top = np.asarray(top)
        for t, h in enumerate(values[half]):
            largest = max(largest, float(np.max(np.abs(h - top[:, t]))))
    return largest


# --- dynamic_rnn calls -------------------------------------------------------------------------

def _keras_half(model, block, half, first, last, x, lengths):
    """Levels first..last of one half of the Keras block, run forward over `x`."""
    mask = keras_cells.length_mask(x, lengths)
    levels = block.levels if half == "fw" else block.backward_levels

    def run_levels(x):
        for k in range(first, last + 1):
            out, *_ = model.get_layer(f"{half}_{k}")(x, mask=mask)  # they return their states
            x = out + x if levels[k].residual else out
        return x
    x = blocks.keras_wrapped(block, half, x, run_levels, first, last, model=model)
    return np.asarray(keras_cells.zero_past_length(x, lengths))


def run_calls(graph, sess, block, rng, notes):
    """[(the graph's output, half, first, last, x, lengths)] of each dynamic_rnn call, or None."""
    calls = [(metagraph.driver_tensors(graph, scope), half, first, last)
             for scope, half, first, last in metagraph.dynamic_scopes(block)]
    if not calls or any(tensors is None for tensors, *_ in calls):
        return None
    runs = []
    for (x_tensor, lengths_tensor, output), half, first, last in calls:
        size = x_tensor.shape[-1]  # the loop's own tensors are time-major
        # The batch: whichever of the two tensors fixes it (a constant length vector).
        batch = (x_tensor.shape[1] or (lengths_tensor.shape[0] if lengths_tensor is not None
                                       and lengths_tensor.shape.rank == 1 else None) or BATCH)
        time = x_tensor.shape[0] or TIME
        x, lengths = random_case(rng, size, batch, time, block.id_classes)
        if lengths_tensor is None:
            lengths[:] = time
        feed = {x_tensor: x.transpose(1, 0, 2),
                **({lengths_tensor: lengths} if lengths_tensor is not None else {})}
        feed.update(neutral_feeds([output], list(feed), batch, time, notes))
        runs.append((sess.run(output, feed).transpose(1, 0, 2), half, first, last, x, lengths))
    return runs


# --- Ops that run a whole sequence (contrib's fused cells) --------------------------------------

def sequence_tensors(graph, view, block):
    """{half: (the bottom level's time-major input, the top level's time-major h, the ops'
    seq_len_max inputs)} of a block whose cells run as one op each (`sequence_calls`), or None."""
    cells = {name: (level, prefix) for name, level, prefix in block.cells()}
    depth, out = len(block.levels), {}
    for half in block.runner.halves:
        (bottom, b_prefix), (top, t_prefix) = cells[f"{half}_0"], cells[f"{half}_{depth - 1}"]
        first = bottom.cell.family.sequence_calls(view, b_prefix)
        last = top.cell.family.sequence_calls(view, t_prefix)
        if len(first) != 1 or len(last) != 1 or any(view.in_loop(key[0])
                                                     for key, _, _ in first + last):
            return None
        (b_key, x, _), (t_key, _, h_index) = first[0], last[0]
        x_name = view.main_tensor(x)
        maxima = {view.main_tensor(view.inputs[key][0]) for key in (b_key, t_key)}
        if x_name is None or None in maxima:  # computed where it cannot be fed
            return None
        out[half] = (graph.get_tensor_by_name(x_name),
                     graph.get_tensor_by_name(f"{t_key[1]}:{h_index}"),
                     [graph.get_tensor_by_name(name) for name in sorted(maxima)])
    return out


def run_sequences(sess, tensors, depth, rng, notes):
    """[(the graph's top h, half, 0, top level, x, full lengths)] with each half's bottom op fed
    a random batch-major x (time-major at the op) and its seq_len_max the whole time."""
    runs = []
    for half, (x_tensor, h_tensor, maxima) in tensors.items():
        time, batch = x_tensor.shape[0] or TIME, x_tensor.shape[1] or BATCH
        x, _ = random_case(rng, x_tensor.shape[-1], batch, time)
        lengths = np.full(batch, time, np.int32)
        feed = {x_tensor: x.transpose(1, 0, 2),
                **{m: np.asarray(time, m.dtype.as_numpy_dtype) for m in maxima}}
        feed.update(neutral_feeds([h_tensor], list(feed), batch, time, notes))
        runs.append((sess.run(h_tensor, feed).transpose(1, 0, 2), half, 0, depth - 1, x,
                     lengths))
    return runs


def compare_calls(model, block, runs):
    return max(float(np.max(np.abs(original - _keras_half(model, block, half, first, last, x,
                                                          lengths))))
               for original, half, first, last, x, lengths in runs)


def against_graph(block, model, prefix, meta, rng):
    """(largest difference, how the graph was fed, [what was neutralised]) between the Keras
    block and the user's graph; (None, why) when the graph cannot be compared with it (it starts
    the block from a state of its own); None when it does not show where the block runs."""
    graph, view, saver, notes = import_neutralised(meta)
    # The TF1 side inside the imported graph, the Keras side after it: Keras 3 runs eagerly.
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        try:
            saver.restore(sess, prefix)
        except (tf.errors.OpError, ValueError) as e:
            raise UserError(f"{meta} does not restore from {prefix} ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]}): the graph and the checkpoint are "
                            "from different models. Pass the .meta of this checkpoint, or move "
                            "it away.") from None
        tensors = stepped_tensors(graph, view, block)
        sequences = sequence_tensors(graph, view, block) if tensors is None else None
        try:
            steps = (run_steps(sess, tensors, rng, notes, block, view) if tensors is not None
                     else None)
            runs = (run_sequences(sess, sequences, len(block.levels), rng, notes) if sequences
                    else run_calls(graph, sess, block, rng, notes) if tensors is None else None)
        except (tf.errors.OpError, ValueError) as e:
            raise UserError(
                f"Running {block.prefix}/ in the graph of {meta} on generated inputs failed "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]}), so the conversion "
                "cannot be checked against it. Nothing was written. Move the .meta away to "
                "check against this project's rebuild instead (the options not read from a "
                "graph are then named as assumed).") from None
    if steps is not None and steps[0] is None:
        return None, steps[1]
    if steps is not None:
        difference = compare_steps(model, block, *steps)
        time, read = len(tensors["fw"][0]), len(tensors["fw"][1])
        how = (f"its {time} steps fed one by one, steps 1-{time - 1} of each direction compared"
               if read < time else f"its {time} steps fed one by one, each direction's outputs "
               "(its wrappers' included) compared at every step")
    elif runs is not None:
        difference = compare_calls(model, block, runs)
        how = ("each direction's fused op fed its time-major input, its whole output compared"
               if sequences else "each dynamic_rnn call fed its input and lengths")
    else:
        difference = None
    if difference is None:
        return None
    return difference, how, sorted(set(notes))


# --- Without a .meta: this project's rebuild ------------------------------------------------------

def against_rebuild(block, model, weights, input_size, rng):
    """Largest difference between this project's TF1 graph of `block` (the checkpoint's weights)
    and the Keras block, on random inputs and lengths."""
    x, lengths = random_case(rng, input_size, classes=block.id_classes)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)  # initialisers exist (then overwritten): op determinism
        xs = tf.compat.v1.placeholder(tf.int32 if block.id_classes else tf.float32,
                                      [None, TIME, input_size])  # static: a fixed T
        ls = tf.compat.v1.placeholder(tf.int32, [None])
        outputs, _ = zoo.tf1_block(block, xs, ls)
        with tf.compat.v1.Session(graph=graph) as sess:
            for v in tf.compat.v1.global_variables():
                v.load(weights[v.op.name], sess)
            original = sess.run(outputs, {xs: x, ls: lengths})
    return float(np.max(np.abs(original - np.asarray(model([x, lengths])))))
