"""What a whole-model conversion (`conversion.whole`) would meet on the way from the named
outputs back to the inputs, without converting anything: `inspect --graph --outputs=NAME`.

The walk goes back from the outputs as the translator does, breadth first, so each op is shown
with its shortest path to an output. It names the placeholders reached (the model's inputs), the
recurrent blocks (ops under a block's scope, as `blockwise.read_blocks` finds the blocks: the
walk goes on through them to what they read) with the final states read from them (a loop's
Exit read from outside the block: the conversion matches each to a level's state by value), the
ops the translator knows, by type, and every op it would refuse, with its path: an op outside
`keras_graph.OPS`, or a loop that is not a block's (shown once per loop). A preview by op type:
the conversion itself also checks what only values show (a computed attribute, a step or a state
that matches none of the block's) and proves the result against the graph.
"""
import collections

from legacy_rnn.errors import UserError

VARIABLES = ("VariableV2", "VarHandleOp", "ReadVariableOp")


def preview(checkpoint, output_names):
    """{checkpoint, outputs, inputs: [{name, shape, dtype}], blocks: [{scope, structure,
    path, final_states}], translated: {op type: count}, refused: [{op, type, why, path}]}."""
    from legacy_rnn import keras_graph
    from legacy_rnn.conversion import blockwise, metagraph, verify, whole
    from legacy_rnn.regression import user_model
    prefix, meta, _, read, old_names = blockwise.read_blocks(checkpoint, none_is_fine=True)
    if meta is None:
        raise UserError(f"{prefix}.meta does not exist"
                        + (" (or reads pre-TF-1.2 names)" if old_names else "")
                        + ": --graph walks the model's graph. Without it, inspect shows the "
                        "recurrent blocks the checkpoint holds (inspect CKPT).")
    model = user_model.Model(prefix)
    graph = model.graph
    blocks = {b.prefix: b for _, b, _ in read}
    # A static driver's block is entered where its ops are (their scopes may differ from its
    # variables'), and left at the step inputs and lengths it reads, as the conversion does.
    # A block whose cells run as one op over the sequence (BlockLSTM) is that op alone, left at
    # its time-major input: the ops around it, under its scope, are translated.
    static, sequence_ops, dynamic = {}, {}, {}
    view = metagraph.GraphView(graph.as_graph_def())
    for name, block in blocks.items():
        calls = [found for scope, *_ in metagraph.dynamic_scopes(block)
                 for found in [metagraph.driver_tensors(graph, scope)] if found is not None]
        if calls:
            # As the conversion does: the loop's output is the block's, fed the loop's own input
            # and lengths; the ops around the loop under its scope (the transposes) are
            # translated, and the loop is never walked (a training graph's While also reads
            # the gradients' accumulators).
            reads = [t for x, lengths, _ in calls for t in (x, lengths) if t is not None]
            dynamic[name] = reads
            sequence_ops.update({out.op.name: (name, reads) for _, _, out in calls})
            continue
        sequences = verify.sequence_tensors(graph, view, block)
        if sequences:
            sequence_ops.update({h.op.name: (name, [x]) for x, h, _ in sequences.values()})
        else:
            static[name] = verify.static_reads(graph, block, view)
    # What the step inputs are computed from is not the block's, even under its scope (the PTB
    # tutorial slices inputs[:, t, :] inside its variable_scope "RNN").
    feeding = whole._ancestors([x for reads in static.values() if reads for x in reads.xs])
    fused = {n for n, _ in sequence_ops.values()} - set(dynamic)
    scopes = sorted(((p, name) for name in blocks if name not in fused for p in (
        static[name].inside if static.get(name) else (f"{name}/",))),
        key=lambda pair: len(pair[0]), reverse=True)
    outputs = [model.tensor(n, "--outputs") for n in output_names]
    seen, queue = set(), collections.deque((t.op, [t.op.name]) for t in outputs)
    inputs, reached, loops, refused, final_states = [], {}, set(), [], {}
    translated = collections.Counter()
    while queue:
        op, path = queue.popleft()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.name in sequence_ops:
            scope, reads = sequence_ops[op.name]
            reached.setdefault(scope, path)
            queue.extend((t.op, path + [t.op.name]) for t in reads)
            continue
        scope = None if op.name in feeding else next(
            (name for p, name in scopes if op.name.startswith(p)), None)
        if scope in dynamic and not _in_loop(op, whole):
            scope = None  # an op around the loop: translated as the graph's
        entered = scope is not None and (len(path) == 1 or not any(
            path[-2].startswith(p) for p, name in scopes if name == scope))
        if entered and _in_loop(op, whole):  # the block's final state, read from outside
            final_states.setdefault(scope, []).append(op.name)
        if scope is not None and static.get(scope):
            if scope not in reached:
                reached[scope] = path
                reads = static[scope]
                queue.extend((t.op, path + [t.op.name]) for t in reads.xs + (
                    [reads.lengths] if reads.lengths is not None else []))
            continue
        if scope is not None:
            reached.setdefault(scope, path)
            if scope in dynamic and _in_loop(op, whole):
                queue.extend((t.op, path + [t.op.name]) for t in dynamic[scope])
                continue
        elif op.type in ("Placeholder", "PlaceholderWithDefault"):
            inputs.append(op)
            continue
        elif op.type in VARIABLES or op.type == "Const":
            continue
        elif _in_loop(op, whole):
            loop = f"/{op.name}".split("/while")[0][1:] + "/while"
            if loop not in loops:
                loops.add(loop)
                refused.append({"op": loop, "type": "loop", "path": path,
                                "why": "a loop that is not a recurrent block's (a final state's "
                                       "Exit, a tf.while_loop of the graph's own)"})
            continue
        elif op.type not in keras_graph.OPS:
            refused.append({"op": op.name, "type": op.type, "path": path,
                            "why": "this translator does not know it"})
        else:
            translated[op.type] += 1
        # Inputs the translation takes as constants (a Transpose's perm, computed by
        # dynamic_rnn from a Range) are values, not ops to translate; a Reshape's computed
        # shape stays an input.
        constant = {i % max(len(op.inputs), 1) for i in whole.STATIC_INPUTS.get(op.type, {})
                    } if op.type != "Reshape" else set()
        queue.extend((t.op, path + [t.op.name]) for i, t in enumerate(op.inputs)
                     if i not in constant)
    return {"checkpoint": prefix, "outputs": list(output_names),
            "inputs": [{"name": op.name, "dtype": op.outputs[0].dtype.name,
                        "shape": op.outputs[0].shape.as_list()
                        if op.outputs[0].shape.rank is not None else None}
                       for op in sorted(inputs, key=lambda o: o.name)],
            "blocks": [{"scope": s, "structure": blocks[s].describe(), "path": p,
                        "final_states": sorted(final_states.get(s, [])),
                        "initial_states": sorted(t.name for t in static[s].states)
                        if static.get(s) else []}
                       for s, p in reached.items()],
            "translated": dict(sorted(translated.items())), "refused": refused}


def _in_loop(op, whole):
    return op.type in whole.verify.LOOP_OPS or "/while/" in f"/{op.name}/"


def shown_path(path):
    shown = path if len(path) <= 8 else path[:4] + ["..."] + path[-3:]
    return " <- ".join(shown)


def print_preview(report, out):
    print(f"{report['checkpoint']}: the graph from {', '.join(report['outputs'])} back to its "
          "inputs", file=out)
    print(f"\n{len(report['inputs'])} input(s):", file=out)
    for i in report["inputs"]:
        print(f"  {i['name']} {i['shape']} {i['dtype']}", file=out)
    print(f"\n{len(report['blocks'])} recurrent block(s) on the way (converted as blocks):",
          file=out)
    for b in report["blocks"]:
        print(f"  {b['scope']}/  {b['structure']}\n    reached by {shown_path(b['path'])}",
              file=out)
        if b["final_states"]:
            print(f"    its final state read as {', '.join(b['final_states'])} (each matched "
                  "to one level's state by value when converting)", file=out)
        if b["initial_states"]:
            print(f"    its initial state read from {', '.join(b['initial_states'])} (it must "
                  "be zeros, as zero_state's are: checked when converting)", file=out)
    counts = ", ".join(f"{k} x{n}" for k, n in report["translated"].items())
    print(f"\n{sum(report['translated'].values())} op(s) translated: {counts or 'none'}",
          file=out)
    print(f"\n{len(report['refused'])} op(s) refused"
          + (": convert --outputs would stop at the first; name an earlier output, or convert "
             "the blocks alone (convert --checkpoint=CKPT --output=DIR)" if report["refused"]
             else ""), file=out)
    for r in report["refused"]:
        print(f"  {r['op']} ({r['type']}): {r['why']}\n    on the path {shown_path(r['path'])}",
              file=out)
