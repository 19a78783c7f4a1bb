"""A user's legacy_seq2seq `embedding_attention_seq2seq` (the old translate tutorial's model):
found in a checkpoint, its options read from the `.meta` graph, converted to the Keras twin
(`decoder.LegacySpec`) and checked against the user's own graph.

Found by legacy_seq2seq's names: `<s>/embedding_attention_decoder/attention_decoder/AttnW_K`
(one per head), the encoder's `<s>/rnn/embedding_wrapper/{embedding, <cell>/...}`, the decoder's
embedding, its cell (under `output_projection_wrapper/` when the model had no output_projection
of the user's own). What the shapes cannot say is read from the graph: the cell's options (as
the zoo reads them: forget_bias and the like sit in op attributes and constants) and
`initial_state_attention` (attention_decoder reads the attention once more, before the first
step: one more MatMul of `Attention_0/kernel` than there are steps).

The check runs the user's graph (dropout passed through) on generated inputs: the encoder's and
the decoder's token ids are the ids its embedding lookups read, and the outputs compared are
attention_decoder's, one per step (`AttnOutputProjection`, before any projection of the user's
own). The twin embeds and encodes the same ids and decodes them teacher-forced. A graph that
builds the model more than once over the same variables (the tutorial's buckets) is checked on
its first copy. A decoder fed its own previous output (`feed_previous=True`) is refused: the
check reads a teacher-forced graph.
"""
import dataclasses
import os

import numpy as np

from legacy_rnn.errors import UserError
from legacy_rnn.seq2seq.decoder import LegacySpec

TOLERANCE = 1e-5
DECODER = "/embedding_attention_decoder/attention_decoder/"


@dataclasses.dataclass
class LegacyFound:
    spec: LegacySpec
    initial_state_attention: bool
    variables: list
    sources: dict  # option -> where its value came from
    copies: list = dataclasses.field(default_factory=list)  # ops' scopes; the first is checked

    def convert(self, prefix, output_dir, weights):
        return convert(prefix, output_dir, self, weights)


def find(shapes, view=None, source="the checkpoint"):
    """[LegacyFound] of every embedding_attention_seq2seq in {name: shape}. Without a `.meta`
    (`view` None) initial_state_attention cannot be known: refused, never guessed."""
    scopes = sorted({n.split(DECODER)[0] for n in shapes if DECODER + "AttnW_" in n})
    return [_found(scope, shapes, view, source) for scope in scopes]


def _found(scope, shapes, view, source):
    from legacy_rnn.seq2seq.checkpoint import _cell, _slot
    a = scope + DECODER.rstrip("/")
    heads = sum(1 for n in shapes if n.startswith(f"{a}/AttnW_") and not _slot(n))
    wrapped = f"{a}/output_projection_wrapper/kernel" in shapes
    encoder_embedding = shapes.get(f"{scope}/rnn/embedding_wrapper/embedding")
    decoder_embedding = shapes.get(f"{scope}/embedding_attention_decoder/embedding")
    if encoder_embedding is None or decoder_embedding is None:
        raise UserError(f"{a}/ in {source} is legacy_seq2seq's attention_decoder, but "
                        f"{scope}/rnn/embedding_wrapper/embedding or {scope}/"
                        "embedding_attention_decoder/embedding is missing: only "
                        "embedding_attention_seq2seq (the translate tutorial's model) is "
                        "converted so far.")
    cells, sources = {}, {}
    for role, prefix in (("encoder", f"{scope}/rnn/embedding_wrapper"),
                         ("decoder", f"{a}/output_projection_wrapper" if wrapped else a)):
        rel = {n[len(prefix) + 1:]: tuple(s) for n, s in shapes.items()
               if n.startswith(prefix + "/") and not _slot(n)}
        cell_scopes = {k.split("/")[0] for k in rel if "/" in k} - {
            "output_projection_wrapper"} - {f"Attention_{k}" for k in range(heads)} - {
            "AttnOutputProjection"}
        if len(cell_scopes) != 1:
            raise UserError(f"{prefix}/ in {source} holds {sorted(cell_scopes) or 'no'} cell "
                            "scopes; embedding_attention_seq2seq wraps one cell (or one "
                            "MultiRNNCell).")
        cell_scope = cell_scopes.pop()
        own = {k[len(cell_scope) + 1:]: s for k, s in rel.items()
               if k.startswith(cell_scope + "/")}
        spec, _, options = _cell(cell_scope, f"{prefix}/{cell_scope}", own, view)
        if spec is None:
            raise UserError(f"{prefix}/{cell_scope}/ in {source} is no cell this tool knows "
                            f"({', '.join(f'{k} {list(s)}' for k, s in own.items())}).")
        cells[role] = spec
        sources.update({f"{role} {k}": v for k, v in options.items()})
    if cells["encoder"] != cells["decoder"]:
        raise UserError(f"The encoder's cell ({cells['encoder'].describe()}) and the decoder's "
                        f"({cells['decoder'].describe()}) of {scope}/ differ; "
                        "embedding_attention_seq2seq gives both copies of one cell, and only "
                        "that model is converted so far.")
    spec = LegacySpec(cells["decoder"], encoder_embedding[0], decoder_embedding[0],
                      encoder_embedding[1], num_heads=heads,
                      output_projection=None if wrapped else ("(the user's W)", "(B)"),
                      scope=scope)
    sources["num_heads"] = f"the checkpoint ({heads} AttnW_K)"
    sources["output_projection"] = ("the checkpoint (an output_projection_wrapper: none of the "
                                    "user's own)" if wrapped else "the checkpoint (no "
                                    "output_projection_wrapper: the user's own W, B)")
    expected = spec.variables()
    actual = {n: tuple(shapes[n]) for n in expected if n in shapes}
    if actual != expected:
        raise UserError(f"{scope}/ does not chain as embedding_attention_seq2seq("
                        f"{spec.cell.describe()}, num_heads={heads}): "
                        f"{sorted(set(expected.items()) ^ set(actual.items()))[:3]}.")
    if view is None:
        raise UserError(f"Whether {scope}/ was built with initial_state_attention cannot be "
                        "read from the checkpoint, and it changes every output. Keep the .meta "
                        "beside the checkpoint: the graph says.")
    return LegacyFound(spec, None, sorted(expected), sources)


# --- The user's graph ------------------------------------------------------------------------
def _source(tensor):
    """The variable (or placeholder) op a tensor reads, through reads and identities."""
    op = tensor.op
    while op.type in ("Identity", "ReadVariableOp", "Enter") and op.inputs:
        op = op.inputs[0].op
    return op


def _readers(graph, variable, types, scope):
    """The ops of `types` named under `scope`/ (any, for "") that read `variable`, in the order
    the graph made them."""
    return [op for op in graph.get_operations() if op.type in types
            and (not scope or op.name.startswith(scope + "/"))
            and any(_source(t).name == variable for t in op.inputs)]


GATHERS = ("GatherV2", "Gather", "ResourceGather")


def read_graph(graph, found):
    """{encoder_ids, decoder_ids: [B] tensors per step, outputs: [B, output] per step,
    initial_state_attention} of the model's first copy in `graph`."""
    spec = found.spec
    scope = spec.scope
    a = scope + DECODER.rstrip("/")
    embedding = f"{scope}/embedding_attention_decoder/embedding"
    lookups = [op for op in _readers(graph, embedding, GATHERS, "")
               if not op.name.startswith("gradients")]
    if not lookups:
        raise UserError(f"The .meta graph looks up no ids in {embedding}: the model's ops are "
                        "not where embedding_attention_seq2seq puts them, so it cannot be "
                        "checked against the graph.")
    # Its ops' name scope: the variables' scope, under whatever name scope the call sat in (the
    # tutorial's model_with_buckets builds one copy per bucket: ..._1, ..._2 over the same
    # variables). The first copy the graph made is checked.
    copies = list(dict.fromkeys(op.name.split("/embedding_attention_decoder/")[0]
                                for op in lookups))
    ops_scope = copies[0]
    encoder = _readers(graph, f"{scope}/rnn/embedding_wrapper/embedding", GATHERS, ops_scope)
    decoder = _readers(graph, embedding, GATHERS, ops_scope)
    if not encoder:
        raise UserError(f"The .meta graph looks up no encoder ids in "
                        f"{scope}/rnn/embedding_wrapper/embedding under {ops_scope}/: the "
                        "model's ops are not where embedding_attention_seq2seq puts them, so it "
                        "cannot be checked against the graph.")
    if any("/loop_function/" in op.name for op in decoder):
        raise UserError(f"{scope}/ in the .meta graph feeds the decoder its own previous "
                        "output (feed_previous=True); the check reads a teacher-forced graph. "
                        "Save the training graph's .meta (feed_previous=False) beside the "
                        "checkpoint and convert that.")
    projections = _readers(graph, f"{a}/AttnOutputProjection/kernel", ("MatMul",), ops_scope)
    outputs = []
    for op in projections:
        adds = [c for c in op.outputs[0].consumers() if c.type in ("BiasAdd", "Add", "AddV2")]
        if len(adds) != 1:
            raise UserError(f"{op.name} in the .meta graph is not followed by its bias: "
                            "AttnOutputProjection is not computed as legacy_seq2seq does.")
        outputs.append(adds[0].outputs[0])
    attention_reads = _readers(graph, f"{a}/Attention_0/kernel", ("MatMul",), ops_scope)
    if len(decoder) != len(outputs) or len(attention_reads) - len(outputs) not in (0, 1):
        raise UserError(f"{scope}/ in the .meta graph has {len(decoder)} decoder inputs, "
                        f"{len(outputs)} outputs and {len(attention_reads)} attention reads; "
                        "attention_decoder makes one of each per step (and one more attention "
                        "read with initial_state_attention).")
    gather_ids = [op.inputs[1] for op in encoder], [op.inputs[1] for op in decoder]
    return {"encoder_ids": gather_ids[0], "decoder_ids": gather_ids[1], "outputs": outputs,
            "initial_state_attention": len(attention_reads) == len(outputs) + 1,
            "copies": copies}


def twin_outputs(spec, twin, source, target, initial_state_attention):
    """The twin's attention_decoder outputs [B, T, output] on token ids [B, S] and [B, T]."""
    from legacy_rnn.seq2seq import keras_decoder
    encoded = twin["encoder"](twin["encoder_embedding"](source))
    return keras_decoder.legacy_decode(twin["decoder"], twin["decoder_embedding"], target,
                                       encoded[0], list(encoded[1:]),
                                       initial_state_attention=initial_state_attention)


def run_graph(prefix, found):
    """(the graph's {encoder_ids, decoder_ids, outputs} on generated inputs, the inputs' shapes);
    sets `found.initial_state_attention` from the graph."""
    import tensorflow as tf
    from legacy_rnn.regression import user_model
    model = user_model.Model(prefix)
    read = read_graph(model.graph, found)
    found.initial_state_attention = read["initial_state_attention"]
    found.sources["initial_state_attention"] = (
        "the .meta graph (attention read once more than there are steps)"
        if found.initial_state_attention else "the .meta graph (one attention read per step)")
    found.copies = read["copies"]
    fetches = {k: read[k] for k in ("encoder_ids", "decoder_ids", "outputs")}
    placeholders = model.placeholders(tf.nest.flatten(fetches))
    feed = user_model.generate_inputs(model, placeholders)
    sess = model.session()
    try:
        got = sess.run(fetches, {model.graph.get_tensor_by_name(k + ":0"): v
                                 for k, v in feed.items()})
    finally:
        sess.close()
    return got, {k: list(np.shape(v)) for k, v in feed.items()}


def twin_of(found, weights):
    """The twin's layers (`LegacySpec.keras_twin`) holding `weights`."""
    twin = found.spec.keras_twin()
    found.spec.to_keras(twin, weights)
    return twin


def difference(found, weights, got, twin=None):
    """Largest |twin - graph| of attention_decoder's outputs, the twin (built from `found` with
    `weights` unless given) fed the ids the graph read."""
    twin = twin_of(found, weights) if twin is None else twin
    out = twin_outputs(found.spec, twin, np.stack(got["encoder_ids"], 1),
                       np.stack(got["decoder_ids"], 1), found.initial_state_attention)
    return float(np.max(np.abs(np.asarray(out) - np.stack(got["outputs"], 1))))


def check_against_graph(prefix, found, weights):
    """(largest |twin - graph| of the decoder outputs, the generated inputs' shapes, the twin)."""
    got, inputs = run_graph(prefix, found)
    twin = twin_of(found, weights)
    return difference(found, weights, got, twin), inputs, twin


def convert(prefix, output_dir, found, weights):
    """Checks `found` against the graph; writes `<scope>.legacy_seq2seq.json` and its `.npz`
    (the twin's layers: encoder_embedding, encoder, decoder_embedding, decoder) into
    `output_dir` when it passes. Returns a report dict."""
    from legacy_rnn.seq2seq import keras_decoder
    largest, inputs, twin = check_against_graph(prefix, found, weights)
    ok = largest <= TOLERANCE
    spec = found.spec
    stem = spec.scope.replace("/", "__") + ".legacy_seq2seq"
    report = {"decoder": f"legacy_seq2seq.embedding_attention_seq2seq({spec.cell.describe()}, "
                         f"num_heads={spec.num_heads}, initial_state_attention="
                         f"{found.initial_state_attention}, output_projection="
                         f"{'the user' if spec.output_projection else 'None'})",
              "scope": spec.scope, "variables": found.variables,
              "options": {name: {"value": _option_value(found, name), "source": source}
                          for name, source in found.sources.items()},
              "largest_difference": largest, "tolerance": TOLERANCE,
              "verified_against": "the user's graph (.meta): attention_decoder's outputs, one "
                                  "per step, on the ids its embedding lookups read"
                                  + (f", in {found.copies[0]}/, the first of the graph's "
                                     f"{len(found.copies)} copies (buckets) of the model"
                                     if len(found.copies) > 1 else ""),
              "inputs": inputs, "ok": ok, "file": stem + ".json" if ok else None}
    if ok:
        keras_decoder.save_layers(os.path.join(output_dir, stem), twin,
                                  depths=[spec.embedding_size, spec.cell.output_size])
    return report


def _option_value(found, name):
    if name == "initial_state_attention":
        return found.initial_state_attention
    if name == "num_heads":
        return found.spec.num_heads
    if name == "output_projection":
        return "the user's" if found.spec.output_projection else None
    return found.spec.cell.get(name.split(" ", 1)[1])
