"""A user's tf.contrib.seq2seq attention decoder: found in a checkpoint, its options read from the
`.meta` graph, converted to the Keras twin and checked against the user's own graph.

Found by contrib's names (`legacy_rnn.seq2seq.decoder` lists them): a scope holding
`attention_wrapper/` (or nmt's `attention/`) with one cell, the mechanism's variables (Bahdanau:
query_layer, attention_v, with normalize attention_g and attention_b; Luong: attention_g with
scale, nothing without), the optional attention_layer, a `memory_layer/kernel` whose width is the
mechanism's, and one dense layer beside the wrapper (the output projection, with or without its
bias). What shapes cannot say is read from the graph: the cell's options (as the zoo reads them)
and `output_attention` when the attention vector and the cell's output have the same width (does
the projection read the attention layer's MatMul, or the cell?). Without a `.meta`, a question the
shapes leave open is refused, never guessed.

The check runs the user's graph (imported from its `.meta`, dropout passed through) on generated
inputs and reads the values its `dynamic_decode` loop starts from: the mechanism's memory (the
input of memory_layer) and lengths (its SequenceMask's), the loop's initial cell state and the
TrainingHelper's input sequence; the twin decodes from those, and its logits are compared with the
graph's `rnn_output` (the stacked first output of the loop). Supported: a teacher-forced
(TrainingHelper) BasicDecoder under dynamic_decode, written by TF 1.x (Enter/Exit loops) or TF 2
(`While`); a graph of another shape is refused naming what was not found.
"""
import dataclasses
import os

import numpy as np

from legacy_rnn.errors import UserError
from legacy_rnn.seq2seq.decoder import AttentionSpec, DecoderSpec

TOLERANCE = 1e-5
MECHANISM_SCOPES = ("bahdanau_attention", "luong_attention")


@dataclasses.dataclass
class Found:
    spec: DecoderSpec
    input_depth: int
    memory_depth: int
    variables: list
    sources: dict  # option -> where its value came from

    def convert(self, prefix, output_dir, weights):
        return convert(prefix, output_dir, self, weights)


def _join(*parts):
    return "/".join(p for p in parts if p)


def find_decoders(shapes, view=None, source="the checkpoint"):
    """[Found] of every AttentionWrapper decoder in {name: shape}."""
    from legacy_rnn.conversion import discover
    found = []
    for wrapper in sorted(discover.decoder_wrappers(shapes)):
        scope, _, wrapper_name = wrapper.rpartition("/")
        rel = {n[len(wrapper) + 1:]: tuple(s) for n, s in shapes.items()
               if n.startswith(wrapper + "/") and not _slot(n)}
        subscopes = {k.split("/")[0] for k in rel} - set(MECHANISM_SCOPES) - {"attention_layer"}
        if len(subscopes) != 1:
            raise UserError(f"{wrapper}/ in {source} holds {sorted(subscopes) or 'no'} cell "
                            "scopes; an AttentionWrapper wraps one cell (or one MultiRNNCell).")
        cell_scope = subscopes.pop()
        cell_prefix = f"{wrapper}/{cell_scope}"
        own = {k[len(cell_scope) + 1:]: s for k, s in rel.items() if k.startswith(cell_scope + "/")}
        cell_spec, cell_input, cell_sources = _cell(cell_scope, cell_prefix, own, view)
        if cell_spec is None:
            raise UserError(f"{cell_prefix}/ in {source} is no cell this tool knows "
                            f"({', '.join(f'{k} {list(s)}' for k, s in own.items())}).")
        cell_out = cell_spec.output_size
        sources = dict(cell_sources)
        if "bahdanau_attention/attention_v" in rel:
            units = rel["bahdanau_attention/attention_v"][0]
            normalize = "bahdanau_attention/attention_g" in rel
            attention = AttentionSpec("bahdanau", units, normalize=normalize)
            sources["normalize"] = "the checkpoint (attention_g, attention_b)" if normalize else \
                "the checkpoint (no attention_g)"
        else:
            units = cell_out
            scale = "luong_attention/attention_g" in rel
            attention = AttentionSpec("luong", units, scale=scale)
            sources["scale"] = "the checkpoint (attention_g)" if scale else \
                "the checkpoint (no attention_g)"
        layer = rel.get("attention_layer/kernel")
        memories = [n for n, s in shapes.items() if n.endswith("memory_layer/kernel")
                    and not _slot(n) and s[1] == units
                    and (layer is None or s[0] == layer[0] - cell_out)]
        if len(memories) != 1:
            raise UserError(f"The decoder under {wrapper}/ needs one memory_layer/kernel of "
                            f"width {units} in {source}; found {memories or 'none'}.")
        memory_depth = shapes[memories[0]][0]
        size = layer[1] if layer is not None else None
        attention_size = size or memory_depth
        # The output projection: the one dense layer beside the wrapper (nmt's has no bias).
        dense = sorted({rel_name.rsplit("/", 1)[0] for n in shapes
                        for rel_name in [n[len(scope) + 1 if scope else 0:]]
                        if n.startswith(_join(scope, "")) and rel_name.count("/") == 1
                        and n.endswith("/kernel") and not n.startswith(wrapper + "/")
                        and not rel_name.startswith("memory_layer/") and not _slot(n)})
        if len(dense) != 1:
            raise UserError(f"The decoder under {_join(scope, '') or 'the top scope'} needs "
                            f"one output projection (a dense layer beside {wrapper_name}/); "
                            f"found {dense or 'none'} in {source}.")
        projection = _join(scope, dense[0])
        rows, vocab = shapes[f"{projection}/kernel"]
        if rows not in (attention_size, cell_out):
            raise UserError(f"{projection}/kernel has {rows} rows; the decoder's attention has "
                            f"{attention_size} and its cell {cell_out}: it is not the output "
                            "projection of this decoder.")
        if attention_size != cell_out:
            output_attention = rows == attention_size
            sources["output_attention"] = f"the checkpoint ({projection}/kernel has {rows} rows)"
        elif view is None:
            raise UserError(f"The attention vector and the cell's output of the decoder under "
                            f"{wrapper}/ are both {rows} wide, so the checkpoint cannot say "
                            "whether the projection reads the attention (output_attention=True, "
                            "contrib's default) or the cell's output. Keep the .meta beside "
                            "the checkpoint: the graph says.")
        else:
            output_attention = _output_attention_in_graph(view, projection, wrapper)
            sources["output_attention"] = "the .meta graph (what the projection reads)"
        spec = DecoderSpec(cell_spec, attention, vocab, attention_layer_size=size,
                           output_attention=output_attention, scope=scope,
                           memory_scope=memories[0][:-len("memory_layer/kernel")].rstrip("/"),
                           output_layer=dense[0], wrapper_name=wrapper_name,
                           output_bias=f"{projection}/bias" in shapes)
        input_depth = cell_input - attention_size
        expected = spec.variables(input_depth, memory_depth)
        actual = {n: tuple(shapes[n]) for n in expected if n in shapes}
        if actual != expected:
            raise UserError(f"The decoder under {wrapper}/ does not chain as "
                            f"{spec.describe()}: {sorted(set(expected.items()) ^ set(actual.items()))[:3]}.")
        found.append(Found(spec, input_depth, memory_depth, sorted(expected), sources))
    return found


def _slot(name):
    from legacy_rnn.conversion.discover import SLOT_SUFFIXES
    return name.rsplit("/", 1)[-1] in SLOT_SUFFIXES


def _cell(scope, prefix, own, view):
    """(CellSpec, input size, {option: source}) of the wrapped cell, options from the graph."""
    from legacy_rnn.conversion import discover
    from legacy_rnn.zoo import cells
    for family in discover._order(scope, prefix, view, blocks_only=False):
        if family.scope != scope:
            continue
        found = family.recognize(own)
        if not found:
            continue
        spec, input_size = found
        if view is None:
            return spec, input_size, {name: "TF1's default (no .meta)"
                                      for name in family.option_names(spec)}
        options = family.options_in_graph(view, prefix)
        spec = cells.CellSpec.make(family.kind, spec.units, **{**dict(spec.options), **options})
        return spec, input_size, {name: "the .meta graph" for name in options}
    return None, None, {}


def _output_attention_in_graph(view, projection, wrapper):
    """Whether the projection's MatMul reads the attention (the attention layer's MatMul, or the
    context's Squeeze) rather than the cell's output."""
    from legacy_rnn.zoo import graphview
    key = graphview.matmul(view, f"{projection}/kernel")
    if key is None:
        raise UserError(f"The .meta graph applies {projection}/kernel in no MatMul: the "
                        "projection is not computed as contrib's Dense computes it.")
    producer = view.inputs[key][0]
    fn, name, _ = producer
    while view.op((fn, name)) in ("Identity",):
        fn, name, _ = view.inputs[(fn, name)][0]
    op = view.op((fn, name))
    layer = graphview.matmul(view, f"{wrapper}/attention_layer/kernel")
    return (fn, name) == layer or op == "Squeeze"


# --- The check against the user's graph ------------------------------------------------------------
def _loop_input(graph, scope, k):
    """The value the decoder loop's flat loop variable `k` starts from (TF 2 While, TF 1 Enter)."""
    loop = _join(scope, "while")
    try:
        op = graph.get_operation_by_name(loop)
        if op.type in ("While", "StatelessWhile"):
            return op.inputs[2 + k]
    except KeyError:
        pass
    try:
        # With maximum_iterations, TF 1's while_loop enters its `iteration_counter` first.
        first = graph.get_operation_by_name(f"{loop}/Enter").inputs[0]
        k += first.op.name.endswith("iteration_counter")
        return graph.get_operation_by_name(f"{loop}/Enter" + (f"_{k}" if k else "")).inputs[0]
    except KeyError:
        raise UserError(f"The .meta graph has no dynamic_decode loop under {loop}/ (neither a "
                        "While op nor Enter nodes): the decoder was not run by dynamic_decode "
                        "there, so it cannot be checked against the graph.") from None


def _helper_inputs(graph, scope):
    """The TrainingHelper's input sequence [B, T, E]: what the loop's TensorArray was filled
    from (time-major), transposed back."""
    import tensorflow as tf
    loop = _join(scope, "while")
    candidates = []
    for op in graph.get_operations():
        if op.type == "TensorListFromTensor" and any(
                c.name == loop for c in op.outputs[0].consumers()):
            candidates.append(op.inputs[0])
        if op.type == "TensorArrayScatterV3" and any(
                c.type == "Enter" and c.name.startswith(loop + "/") for c in
                op.outputs[0].consumers()):
            candidates.append(op.inputs[2])
    candidates = [t for t in candidates if t.dtype == tf.float32 and t.shape.rank == 3]
    if len(candidates) != 1:
        raise UserError(f"The dynamic_decode loop under {loop}/ reads {len(candidates)} input "
                        "sequences; a teacher-forced decoder (TrainingHelper) reads one. Only "
                        "that decoder is checked against the graph so far.")
    return tf.transpose(candidates[0], [1, 0, 2])


def _memory(graph, spec):
    """(memory values [B, T, D], memory lengths or None): the input of memory_layer's ops, and the
    lengths its SequenceMask was built from."""
    import tensorflow as tf
    variable = _join(spec.memory_scope, "memory_layer/kernel")
    users = [op for op in graph.get_operations() if "/memory_layer/" in f"/{op.name}"
             and not op.name.startswith(variable) and any(
                 variable in t.op.name or t.op.name.startswith(variable) for t in op.inputs)]
    if not users:
        raise UserError(f"The .meta graph reads {variable} in no op.")
    layer_scope = users[0].name[:users[0].name.index("memory_layer/") + len("memory_layer/")]
    values = {t for op in graph.get_operations() if op.name.startswith(layer_scope)
              for t in op.inputs if not t.op.name.startswith(layer_scope)
              and t.dtype == tf.float32 and t.shape.rank == 3}
    if len(values) != 1:
        raise UserError(f"memory_layer ({layer_scope}) reads {len(values)} memories in the "
                        ".meta graph; contrib's reads one.")
    values = values.pop()
    lengths, frontier, seen = None, [values.op], set()
    while frontier and lengths is None:
        op = frontier.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if "SequenceMask/" in op.name and op.type == "ExpandDims":
            lengths = op.inputs[0]
            break
        frontier.extend(t.op for t in op.inputs)
    return values, lengths


def _rnn_output(graph, scope):
    for stack in (_join(scope, "TensorArrayV2Stack/TensorListStack"),
                  _join(scope, "TensorArrayStack/TensorArrayGatherV3")):
        try:
            op = graph.get_operation_by_name(stack)
        except KeyError:
            continue
        out = op.outputs[0]
        transposes = [c for c in out.consumers() if c.type == "Transpose"]
        if transposes:
            return transposes[0].outputs[0]
        import tensorflow as tf
        return tf.transpose(out, [1, 0, 2])  # output_time_major
    raise UserError(f"The .meta graph stacks no decoder outputs under {scope}/: dynamic_decode's "
                    "outputs are not where it writes them.")


GATHERS = {"GatherV2", "ResourceGather", "Gather"}


def _in_loop(view, key, loop):
    """Whether op `key` runs inside the while loop named `loop` (TF 1 Enter/Exit: its name is
    under `loop/`; TF 2: its function is the loop's body, or called from it)."""
    from legacy_rnn.zoo.graphview import MAIN
    fn, name = key
    if fn == MAIN:
        return name.startswith(loop + "/")
    seen = set()
    while fn != MAIN and fn not in seen:
        seen.add(fn)
        callers = view.callers.get(fn)
        if not callers:
            return False
        caller_fn, caller, op = callers[0]
        if op in ("While", "StatelessWhile") and caller_fn == MAIN and caller == loop:
            return True
        fn = caller_fn
    return False


def _feeds_loop(view, key, loop, depth=8):
    """Whether the output of main-graph op `key` reaches the loop `loop` within `depth` ops."""
    frontier, seen = [key], {key}
    for _ in range(depth):
        following = []
        for current in frontier:
            for nxt, _ in view.next_ops(current):
                if nxt[1] == loop or _in_loop(view, nxt, loop):
                    return True
                if nxt not in seen and nxt[0] == current[0]:
                    seen.add(nxt)
                    following.append(nxt)
        frontier = following
    return False


def _outside(view, producer, loop):
    """The main-graph tensor (`node:index`) outside `loop` that a value inside it comes from
    (through a body's arguments, Enter and Identity), or None where the loop computes it."""
    from legacy_rnn.zoo.graphview import MAIN
    fn, name, index = producer
    for _ in range(16):
        if fn != MAIN:
            tensor = view.main_tensor((fn, name, index))
            if tensor is None:
                return None
            name, index = tensor.rsplit(":", 1)
            fn, index = MAIN, int(index)
        if view.op((MAIN, name)) in ("Enter", "Identity") and name.startswith(loop + "/"):
            fn, name, index = view.inputs[(MAIN, name)][0]
            continue
        return None if name.startswith(loop + "/") else f"{name}:{index}"
    return None


def _greedy_problem(view, found, shapes):
    """What a GreedyEmbeddingHelper decoder's loop reads besides the attention's memory and the
    initial state: {embedding: variable name, start_tokens: tensor, end_token: tensor or value}.
    None when no embedding of the decoder's inputs is looked up inside its loop (a teacher-forced
    decoder's graph); UserError where the graph is read only in part."""
    from legacy_rnn.zoo import graphview
    loop = _join(found.spec.scope, "while")
    # The sampled ids index it, and its rows are the decoder's inputs.
    candidates = [name for name, shape in shapes.items() if not _slot(name)
                  and tuple(shape) == (found.spec.vocab, found.input_depth)]
    inside, outside = {}, {}
    for name in candidates:
        keys = graphview.first_use(view, name, GATHERS)
        loop_keys = [k for k in keys if _in_loop(view, k, loop)]
        if loop_keys:
            inside[name] = loop_keys
            outside[name] = [k for k in keys if k[0] == graphview.MAIN and k not in loop_keys
                             and _feeds_loop(view, k, loop)]
    if not inside:
        return None
    if len(inside) != 1:
        raise UserError(f"The decoder loop {loop} looks up {len(inside)} embeddings "
                        f"({', '.join(sorted(inside))}); a GreedyEmbeddingHelper looks up one.")
    (embedding, _), = inside.items()
    starts = outside[embedding]
    if len(starts) != 1:
        raise UserError(f"The decoder loop {loop} starts from {len(starts)} lookups of "
                        f"{embedding} (the start tokens' embedding); a GreedyEmbeddingHelper "
                        "starts from one.")
    fn, name, index = view.inputs[starts[0]][1]  # Gather(params, indices, ...)
    start_tokens = f"{name}:{index}"
    ends = []
    for key, node in view.nodes.items():
        if node is None or node.op != "Equal" or not _in_loop(view, key, loop):
            continue
        operands = view.inputs[key]
        sampled = [i for i, (f, n, _) in enumerate(operands)
                   if view.op((f, n)) == "ArgMax" or (view.op((f, n)) == "Cast" and view.op(
                       view.inputs[(f, n)][0][:2]) == "ArgMax")]
        if len(sampled) == 1:
            other = operands[1 - sampled[0]]
            value = view.const_array(other[:2])
            ends.append(int(value) if value is not None else _outside(view, other, loop))
    if len(ends) != 1 or ends[0] is None:
        raise UserError(f"The decoder loop {loop} compares its argmax with {len(ends)} end "
                        "tokens it reads from outside; a GreedyEmbeddingHelper compares it with "
                        "one.")
    return {"embedding": embedding, "start_tokens": start_tokens, "end_token": ends[0]}


def check_against_graph(prefix, found, weights, rng_seed=0):
    """(largest |twin - graph| of the decoder's logits, the generated inputs, what was
    compared). A teacher-forced decoder (TrainingHelper): the twin is fed the loop's inputs. A
    greedy one (GreedyEmbeddingHelper, an inference graph): the twin decodes greedily from the
    loop's start tokens with the graph's embedding and end token; its tokens must be the graph's
    (argmax of the graph's logits) and its logits are compared step by step up to each row's
    end (past it, impute_finished may zero the graph's)."""
    import keras
    import tensorflow as tf

    from legacy_rnn.regression import user_model
    from legacy_rnn.training import checkpoints
    from legacy_rnn.seq2seq import keras_decoder
    from legacy_rnn.zoo import cells, graphview
    spec = found.spec
    model = user_model.Model(prefix)
    graph = model.graph
    view = graphview.GraphView(graph.as_graph_def())
    greedy = _greedy_problem(view, found, checkpoints.list_variables(prefix))
    with graph.as_default():
        logits = _rnn_output(graph, spec.scope)
        values, lengths = _memory(graph, spec)
        n_state = len(cells.tf1_state_sizes(spec.cell))
        state = [_loop_input(graph, spec.scope, 3 + i) for i in range(n_state)]
        fetches = {"logits": logits, "values": values, "state": state}
        if greedy is None:
            fetches["inputs"] = _helper_inputs(graph, spec.scope)
        else:
            fetches["start_tokens"] = graph.get_tensor_by_name(greedy["start_tokens"])
            if isinstance(greedy["end_token"], str):
                fetches["end_token"] = graph.get_tensor_by_name(greedy["end_token"])
    if lengths is not None:
        fetches["lengths"] = lengths
    placeholders = model.placeholders(tf.nest.flatten(fetches))
    feed = user_model.generate_inputs(model, placeholders)
    sess = model.session()
    try:
        got = sess.run(fetches, {graph.get_tensor_by_name(k + ":0"): v for k, v in feed.items()})
    finally:
        sess.close()
    cell, projection = spec.keras_twin(found.input_depth, found.memory_depth)
    spec.to_keras(cell, projection, weights)
    tf1_state = (got["state"][0] if n_state == 1 else
                 tf.nest.pack_sequence_as(spec.cell.family.tf1_cell(spec.cell).state_size,
                                          got["state"]))
    states = spec.cell.family.state_to_keras(spec.cell, tf1_state)
    batch = got["values"].shape[0]
    steps = got["logits"].shape[1]
    memory = keras_decoder.Memory(cell.attention, got["values"], got.get("lengths"))
    initial = [np.asarray(s) for s in states] + [cell.initial_attention(batch)]
    inputs = {k: list(np.shape(v)) for k, v in feed.items()}
    if greedy is None:
        twin, _ = keras_decoder.teacher_forced(
            cell, projection, got["inputs"], np.full(batch, steps, np.int32), memory, initial)
        difference = float(np.max(np.abs(np.asarray(twin) - got["logits"])))
        return difference, inputs, ("the teacher-forced logits of its dynamic_decode, the twin "
                                    "fed the loop's own memory, lengths, initial state and inputs")
    table = checkpoints.load_tensors(prefix, [greedy["embedding"]])[greedy["embedding"]]
    end = int(got.get("end_token", greedy["end_token"]))
    ids, twin, twin_lengths = keras_decoder.greedy_decode(
        cell, projection, lambda t: keras.ops.take(table, t, axis=0),
        np.asarray(got["start_tokens"], np.int32), end, memory, initial, steps)
    ids, twin, twin_lengths = np.asarray(ids), np.asarray(twin), np.asarray(twin_lengths)
    compared = (f"the greedy decoding of its dynamic_decode (GreedyEmbeddingHelper: "
                f"{greedy['embedding']} looked up in the loop, end token {end}), the twin "
                "decoding from the loop's own memory, lengths, initial state and start tokens: "
                "tokens equal, logits up to each row's end")
    within = np.arange(steps)[None] < twin_lengths[:, None]
    if ids.shape[1] != steps or not np.array_equal(
            np.where(within, ids, -1), np.where(within, np.argmax(got["logits"], -1), -1)):
        return float("inf"), inputs, compared + " (the twin's tokens differ from the graph's)"
    difference = float(np.max(np.abs(twin - got["logits"]) * within[:, :, None]))
    return difference, inputs, compared


def convert(prefix, output_dir, found, weights):
    """Checks `found` against the graph; writes `<scope>.decoder.json` and its `.npz` into
    `output_dir` when it passes. Returns a report dict."""
    difference, inputs, compared = check_against_graph(prefix, found, weights)
    ok = difference <= TOLERANCE
    stem = (found.spec.scope or "decoder").replace("/", "__") + ".decoder"
    report = {"decoder": found.spec.describe(), "scope": found.spec.scope,
              "variables": found.variables,
              "options": {name: {"value": _option_value(found.spec, name), "source": source}
                          for name, source in found.sources.items()},
              "largest_difference": difference, "tolerance": TOLERANCE,
              "verified_against": f"the user's graph (.meta): {compared}",
              "inputs": inputs, "ok": ok, "file": stem + ".json" if ok else None}
    if ok:
        from legacy_rnn.seq2seq import keras_decoder
        cell, projection = found.spec.keras_twin(found.input_depth, found.memory_depth)
        found.spec.to_keras(cell, projection, weights)
        keras_decoder.save_layers(os.path.join(output_dir, stem),
                                  {"cell": cell, "projection": projection},
                                  depths=[found.input_depth, found.memory_depth])
    return report


def _option_value(spec, name):
    if name in ("normalize", "scale"):
        return getattr(spec.attention, name)
    if name == "output_attention":
        return spec.output_attention
    return spec.cell.get(name)
