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
graph's `rnn_output` (the stacked first output of the loop). An inference graph is checked by
decoding as it does (`check_against_graph`): greedily (GreedyEmbeddingHelper) or by beam search
(BeamSearchDecoder), from the loop's own start tokens, with the embedding the loop looks up and
the end token it compares with. Supported: those three under dynamic_decode, written by TF 1.x
(Enter/Exit loops) or TF 2 (`While`); a graph of another shape is refused naming what was not
found.
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


def _stacked_output(graph, scope, i=0):
    """The loop's `i`-th output sequence, batch-major: dynamic_decode stacks each output's
    TensorArray after the loop (BasicDecoder: rnn_output, sample_id; BeamSearchDecoder: scores,
    predicted_ids, parent_ids)."""
    suffix = f"_{i}" if i else ""
    for stack in (_join(scope, f"TensorArrayV2Stack{suffix}/TensorListStack"),
                  _join(scope, f"TensorArrayStack{suffix}/TensorArrayGatherV3")):
        try:
            op = graph.get_operation_by_name(stack)
        except KeyError:
            continue
        out = op.outputs[0]
        transposes = [c for c in out.consumers() if c.type == "Transpose"]
        if transposes:
            return transposes[0].outputs[0]
        import tensorflow as tf
        return tf.transpose(out, [1, 0] + list(range(2, out.shape.rank)))  # output_time_major
    raise UserError(f"The .meta graph stacks no decoder outputs under {scope}/: dynamic_decode's "
                    "outputs are not where it writes them.")


def _rnn_output(graph, scope):
    return _stacked_output(graph, scope, 0)


def _is_beam_search(view, scope):
    """Whether the decoder under `scope` is a BeamSearchDecoder: contrib's GatherTree op, or its
    step's name scope inside the decoder's loop."""
    loop = _join(scope, "while")
    return any(node is not None and (node.op == "GatherTree" or (
        "BeamSearchDecoderStep" in name and _in_loop(view, (fn, name), loop)))
        for (fn, name), node in view.nodes.items())


GATHERS = {"GatherV2", "ResourceGather", "Gather"}


def _in_loop(view, key, loop):
    """Whether op `key` runs inside the while loop named `loop` (TF 1 Enter/Exit: its name is
    under `loop/`; TF 2: its function is the loop's body, or called from it)."""
    from legacy_rnn.zoo.graphview import MAIN
    fn, name = key
    return name.startswith(loop + "/") if fn == MAIN else view.in_loop(fn, loop)


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


def _sampled(view, operand, ops):
    """Whether `operand` is computed (through a Cast) by an op of a type in `ops`."""
    key = operand[:2]
    if view.op(key) == "Cast":
        key = view.inputs[key][0][:2]
    return view.op(key) in ops


def _sampling_problem(view, found, shapes, beam):
    """What a decoder that feeds itself reads besides the attention's memory and the initial
    state: {embedding: variable name, start_tokens: tensor, end_token: tensor name or value,
    length_penalty_weight (beam)}. None when no embedding of the decoder's inputs is looked up
    inside its loop (a teacher-forced decoder's graph); UserError where the graph is read only in
    part. GreedyEmbeddingHelper compares the argmax with the end token, BeamSearchDecoder the
    word ids (`indices % vocab`); its length penalty is the exponent of the Pow ops in its step
    (none: weight 0, which contrib computes as no penalty)."""
    from legacy_rnn.zoo import graphview
    loop = _join(found.spec.scope, "while")
    what = "a BeamSearchDecoder" if beam else "a GreedyEmbeddingHelper"
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
        if beam:
            raise UserError(f"The BeamSearchDecoder's loop {loop} looks up no embedding of "
                            f"{found.spec.vocab} x {found.input_depth} in the checkpoint: its "
                            "inputs cannot be reproduced.")
        return None
    if len(inside) != 1:
        raise UserError(f"The decoder loop {loop} looks up {len(inside)} embeddings "
                        f"({', '.join(sorted(inside))}); {what} looks up one.")
    (embedding, _), = inside.items()
    starts = outside[embedding]
    if len(starts) != 1:
        raise UserError(f"The decoder loop {loop} starts from {len(starts)} lookups of "
                        f"{embedding} (the start tokens' embedding); {what} starts from one.")
    fn, name, index = view.inputs[starts[0]][1]  # Gather(params, indices, ...)
    problem = {"embedding": embedding, "start_tokens": f"{name}:{index}"}
    ends, exponents = [], set()
    sample_ops = {"FloorMod"} if beam else {"ArgMax"}
    for key, node in view.nodes.items():
        if node is None or node.op not in ("Equal", "Pow") or not _in_loop(view, key, loop):
            continue
        operands = view.inputs[key]
        if node.op == "Pow":
            exponents.add(view.const(operands[1][:2]) if view.const(operands[1][:2]) is not None
                          else _outside(view, operands[1], loop))
            continue
        sampled = [i for i, operand in enumerate(operands) if _sampled(view, operand, sample_ops)]
        if len(sampled) == 1:
            other = operands[1 - sampled[0]]
            value = view.const_array(other[:2])
            ends.append(int(value) if value is not None else _outside(view, other, loop))
    if len(ends) != 1 or ends[0] is None:
        raise UserError(f"The decoder loop {loop} compares its {'word ids' if beam else 'argmax'}"
                        f" with {len(ends)} end tokens it reads from outside; {what} compares "
                        "them with one.")
    problem["end_token"] = ends[0]
    if beam:
        if len(exponents) > 1 or None in exponents:
            raise UserError(f"The beam search under {loop} raises lengths to "
                            f"{len(exponents)} powers; contrib's length penalty uses one "
                            "constant length_penalty_weight.")
        problem["length_penalty_weight"] = exponents.pop() if exponents else 0.0
    return problem


def check_against_graph(prefix, found, weights, rng_seed=0):
    """(largest |twin - graph| of the decoder's logits or beam scores, the generated inputs,
    what was compared). A teacher-forced decoder (TrainingHelper): the twin is fed the loop's
    inputs. One that feeds itself (an inference graph) decodes from the loop's own start tokens,
    with the embedding the loop looks up and the end token it compares with: greedy
    (GreedyEmbeddingHelper), its tokens must be the graph's (the argmax of the graph's logits)
    and its logits are compared step by step up to each row's end (past it, impute_finished may
    zero the graph's); beam search (BeamSearchDecoder, the beam width and length penalty read
    from the graph), each step's word ids and parent beams must be the graph's and its scores
    are compared."""
    import keras
    import tensorflow as tf

    from legacy_rnn.regression import user_model
    from legacy_rnn.seq2seq import keras_decoder
    from legacy_rnn.training import checkpoints
    from legacy_rnn.zoo import cells, graphview
    spec = found.spec
    model = user_model.Model(prefix)
    graph = model.graph
    view = graphview.GraphView(graph.as_graph_def())
    beam = _is_beam_search(view, spec.scope)
    sampling = _sampling_problem(view, found, checkpoints.list_variables(prefix), beam)
    n_outputs = 3 if beam else 2  # the loop's output TensorArrays, before its state
    with graph.as_default():
        values, lengths = _memory(graph, spec)
        n_state = len(cells.tf1_state_sizes(spec.cell))
        state = [_loop_input(graph, spec.scope, 1 + n_outputs + i) for i in range(n_state)]
        fetches = {"values": values, "state": state}
        if beam:
            fetches.update({name: _stacked_output(graph, spec.scope, i) for i, name in
                            enumerate(("scores", "word_ids", "parent_ids"))})
        else:
            fetches["logits"] = _rnn_output(graph, spec.scope)
        if sampling is None:
            fetches["inputs"] = _helper_inputs(graph, spec.scope)
        else:
            fetches["start_tokens"] = graph.get_tensor_by_name(sampling["start_tokens"])
            if isinstance(sampling["end_token"], str):
                fetches["end_token"] = graph.get_tensor_by_name(sampling["end_token"])
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
    # A beam search's cell state is [batch, beam, ...]: the twin's rows are batch * beam.
    flat = [np.reshape(s, (-1,) + np.shape(s)[2:]) if beam else s for s in got["state"]]
    tf1_state = (flat[0] if n_state == 1 else
                 tf.nest.pack_sequence_as(spec.cell.family.tf1_cell(spec.cell).state_size, flat))
    states = spec.cell.family.state_to_keras(spec.cell, tf1_state)
    rows = got["values"].shape[0]
    memory = keras_decoder.Memory(cell.attention, got["values"], got.get("lengths"))
    initial = [np.asarray(s) for s in states] + [cell.initial_attention(rows)]
    inputs = {k: list(np.shape(v)) for k, v in feed.items()}
    if sampling is None:
        steps = got["logits"].shape[1]
        twin, _ = keras_decoder.teacher_forced(
            cell, projection, got["inputs"], np.full(rows, steps, np.int32), memory, initial)
        difference = float(np.max(np.abs(np.asarray(twin) - got["logits"])))
        return difference, inputs, ("the teacher-forced logits of its dynamic_decode, the twin "
                                    "fed the loop's own memory, lengths, initial state and inputs")
    table = checkpoints.load_tensors(prefix, [sampling["embedding"]])[sampling["embedding"]]

    def embed(ids):
        return keras.ops.take(table, ids, axis=0)

    end = int(got.get("end_token", sampling["end_token"]))
    start = np.asarray(got["start_tokens"], np.int32)
    read = (f"{sampling['embedding']} looked up in the loop, end token {end}")
    if beam:
        width = got["scores"].shape[2]
        weight = sampling["length_penalty_weight"]
        steps = got["scores"].shape[1]
        _, scores, _, word_ids, parents = keras_decoder.beam_search_decode(
            cell, projection, embed, start[:, 0] if start.ndim == 2 else start, end, memory,
            initial, width, steps, weight, steps_too=True)
        compared = (f"the beam search of its dynamic_decode (BeamSearchDecoder: beam width "
                    f"{width} and length_penalty_weight {weight:g} from the graph, {read}), the "
                    "twin searching from the loop's own memory, lengths, initial state and start "
                    "tokens: each step's word ids and parent beams equal, scores compared")
        scores, word_ids, parents = (np.asarray(x) for x in (scores, word_ids, parents))
        if scores.shape != got["scores"].shape or not (
                np.array_equal(word_ids, got["word_ids"])
                and np.array_equal(parents, got["parent_ids"])):
            return float("inf"), inputs, compared + " (the twin's beams differ from the graph's)"
        finite = np.isfinite(got["scores"])
        if not np.array_equal(finite, np.isfinite(scores)):
            return float("inf"), inputs, compared + " (the twin's scores are not finite where " \
                                                    "the graph's are)"
        return float(np.max(np.abs(scores - got["scores"])[finite])), inputs, compared
    steps = got["logits"].shape[1]
    ids, twin, twin_lengths = keras_decoder.greedy_decode(
        cell, projection, embed, start, end, memory, initial, steps)
    ids, twin, twin_lengths = np.asarray(ids), np.asarray(twin), np.asarray(twin_lengths)
    compared = (f"the greedy decoding of its dynamic_decode (GreedyEmbeddingHelper: {read}), the "
                "twin decoding from the loop's own memory, lengths, initial state and start "
                "tokens: tokens equal, logits up to each row's end")
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
