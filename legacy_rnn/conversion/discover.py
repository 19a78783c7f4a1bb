"""Finding the recurrent blocks of any TF1 checkpoint from its variable names and shapes.

A cell is a set of variables under one scope that one zoo family recognises (`kernel`/`bias`
shaped like an LSTM, a GRU's `gates/...` and `candidate/...`, ...). Cells are grouped into blocks
by the scopes the TF1 drivers create around them (each driver's `patterns`, `zoo/drivers.py`):

    ROOT/<cell>                                   one cell (static_rnn / dynamic_rnn)
    ROOT/multi_rnn_cell/cell_K/<cell>             a MultiRNNCell stack (of one cell, too)
    ROOT/{fw,bw}/<cell>, ROOT/{fw,bw}/multi_rnn_cell/cell_K/<cell>      a bidirectional pair
    ROOT/cell_K/bidirectional_rnn/{fw,bw}/<cell>  stack_bidirectional_dynamic_rnn
    ROOT/cell_K/{fw,bw}/<cell>                    stack_bidirectional_rnn (static)

`<cell>` is the cell's scope: TF1's default (`lstm_cell`, `gru_cell`, ...) or a name the code
gave it. A wrapper with variables (`zoo/wrappers.py`: `output_projection_wrapper`, ...) may sit
between a forward or bidirectional driver's scope and the cell or `multi_rnn_cell` it wraps:
`ROOT/output_projection_wrapper/<cell>`, `ROOT/fw/input_projection_wrapper/multi_rnn_cell/...`.
Everything else gets a guess (a dense layer, an embedding, optimizer state, ...).
"""
import dataclasses
import re

from legacy_rnn import zoo
from legacy_rnn.errors import UserError
from legacy_rnn.zoo import blocks, drivers, wrappers

SLOT_SUFFIXES = ("Adam", "Adam_1", "Momentum", "RMSProp", "RMSProp_1", "Adagrad", "Adadelta",
                 "Adadelta_1", "Ftrl", "Ftrl_1", "ExponentialMovingAverage")
@dataclasses.dataclass
class Found:
    """A recognised block: its zoo Block (default options), input size, and checkpoint names."""
    block: zoo.Block
    input_size: int
    variables: list

    @property
    def name(self):
        """A file-name-safe name: the scope with `/` as `__`."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.block.prefix.replace("/", "__")) or "rnn"


def _relative_names():
    return set().union(*(family.variable_names() for family in zoo.FAMILIES.values()
                         if family.in_blocks))


def _order(scope, prefix, view, blocks_only=True):
    """The families to try on the cell under `prefix`, best first: those whose default scope it
    is, then the rest by how many variables they can hold (a family explains every variable of
    the cell or is not it). With a graph, a family whose ops the graph shows goes first and one
    whose ops it contradicts (another family's fused op reads the kernel) is not tried."""
    families = sorted((f for f in zoo.FAMILIES.values() if f.in_blocks or not blocks_only),
                      key=lambda f: (f.scope != scope, -len(f.variable_names())))
    if view is None:
        return families
    verdicts = {f.kind: f.in_graph(view, prefix) for f in families}
    return sorted((f for f in families if verdicts[f.kind] is not False),
                  key=lambda f: verdicts[f.kind] is not True)


def find_cells(shapes, view=None):
    """[(cell prefix, CellSpec, input size, {relative name: shape})] and the names used; `view`
    (the `.meta` graph's GraphView), when there is one, decides between families."""
    relative = sorted(_relative_names(), key=len, reverse=True)
    prefixes = set()
    for name in shapes:
        for rel in relative:
            if name.endswith("/" + rel) or name == rel:
                prefixes.add(name[:-len(rel)].rstrip("/"))
    cells, used = [], set()
    # The seq2seq converter's: a contrib AttentionWrapper's cell (it reads concat([input,
    # attention])), and the whole of a legacy embedding_attention_seq2seq (its encoder too).
    theirs = [w + "/" for w in decoder_wrappers(shapes)] + [
        s + "/" for s in legacy_seq2seq_scopes(shapes)]
    # Shortest first: a GRU's scope before its `candidate` sub-scope (whose kernel and bias alone
    # would pass for a BasicRNNCell).
    for prefix in sorted(prefixes, key=len):
        if any(f"{prefix}/".startswith(scope) for scope in theirs):
            continue
        own = {name[len(prefix) + 1:] if prefix else name: shape for name, shape in shapes.items()
               if (name.startswith(prefix + "/") if prefix else True) and name not in used}
        own = {rel: shape for rel, shape in own.items() if rel in relative}
        scope = prefix.rsplit("/", 1)[-1]
        unwrapped = unwrap(prefix)
        if unwrapped is None:
            # A wrapper's own projection passed for a BasicRNNCell, the cell inside a wrapper
            # the zoo does not convert (or where it does not) for a block of its own: both wrong.
            # What such a wrapper holds is named as not converted, never misread.
            continue
        if scope not in {f.scope for f in zoo.FAMILIES.values()} and \
                not _inside_a_driver(unwrapped[0]):
            continue  # `dense/kernel` and `dense/bias` are not a BasicRNNCell
        for family in _order(scope, prefix, view):
            wanted = {rel: shape for rel, shape in own.items() if rel in family.variable_names()}
            found = family.recognize(wanted) if wanted and wanted == own else None
            if found:
                spec, input_size = found
                cells.append((prefix, spec, input_size, wanted))
                used |= {f"{prefix}/{rel}" if prefix else rel for rel in wanted}
                break
    return cells, used


def unwrap(prefix):
    """(the cell prefix without its wrappers' scopes, those scopes outermost first), or None
    when a wrapper's scope is in it where the zoo does not convert one: a wrapper it has no
    twin for, one inside a MultiRNNCell's level, or the prefix of the wrapper's own variables."""
    parts = prefix.split("/")
    end = len(parts) - 1  # the cell's own scope
    if end >= 2 and parts[end - 2] == "multi_rnn_cell" and re.fullmatch(r"cell_\d+",
                                                                        parts[end - 1]):
        end -= 2
    start = end
    convertible = wrappers.by_scope()
    while start > 0 and parts[start - 1] in convertible:
        start -= 1
    rest = parts[:start] + parts[end:]
    if any(part in UNCONVERTED_WRAPPERS or part in convertible for part in rest):
        return None
    return "/".join(rest), tuple(parts[start:end])


def _wrapper_specs(block, shapes):
    """`block` with its wrappers' sizes read from their variables (both directions alike), or
    None when the variables are not the wrappers'."""
    sizes = {}
    for _, spec, prefix, _, index in block.wrapped():
        relative = {n[len(prefix) + 1:]: tuple(s) for n, s in shapes.items()
                    if n.startswith(prefix + "/") and "/" not in n[len(prefix) + 1:]}
        found = spec.wrapper.recognize(relative)
        if found is None or sizes.setdefault(index, found) != found:
            return None
    return dataclasses.replace(block, wrappers=tuple(sizes[i] for i in range(len(sizes))))


def _inside_a_driver(prefix):
    """Whether a cell with a name of its own (`BasicLSTMCell(U, name="enc")`) sits where a TF1
    driver puts cells: under a driver's default scope or a stack/direction scope."""
    driver, root, _, _, stacked, _ = _structure(prefix)
    return driver.direction != "forward" or stacked or \
        root.rsplit("/", 1)[-1] in drivers.default_scopes()


def _structure(prefix, called_directly=False):
    """(driver, root, level index, half, in a MultiRNNCell, cell scope) of a cell prefix. A cell
    the user's code calls on the whole sequence (contrib's fused cells) is never half of a
    bidirectional driver's pair: under `fw/` and `bw/` it is two calls of the user's own, whose
    reversal (TimeReversedFusedRNN, or none) is the graph's, not the block's."""
    parent, _, scope = prefix.rpartition("/")
    for driver in drivers.discovery_order():
        if called_directly and driver.direction != "forward":
            continue
        found = driver.match(parent)
        if found:
            return (driver, *found, scope)
    raise AssertionError(f"no driver pattern matches {parent!r}")  # forward's last one matches all


def discover(shapes, view=None):
    """(list of Found, {name: shape} of the variables no block uses)."""
    cells, used = find_cells(shapes, view)
    groups = {}
    for prefix, spec, input_size, own in cells:
        bare, wrapped = unwrap(prefix)
        driver, root, k, half, stacked, scope = _structure(bare, spec.family.called_directly)
        key = (driver.direction, driver.driver, root, stacked, wrapped)
        groups.setdefault(key, {})[(half, k)] = (spec, input_size, scope, prefix, own)
    found = []
    for (direction, driver, root, stacked, wrapped), levels in sorted(groups.items(),
                                                                      key=lambda kv: kv[0][2]):
        depth = 1 + max(k for _, k in levels)
        halves = drivers.get(direction, driver).halves
        if any((h, k) not in levels for h in halves for k in range(depth)):
            continue  # an incomplete stack: left among the other variables
        stacks = {h: [blocks.Level(levels[(h, k)][0],
                                   name=None if levels[(h, k)][2] == levels[(h, k)][0].family.scope
                                   else levels[(h, k)][2]) for k in range(depth)]
                  for h in halves}
        if wrapped and direction == "stack_bidirectional":
            continue
        kinds = wrappers.by_scope()
        block = zoo.Block(stacks["fw"], direction, driver, backward=stacks.get("bw"),
                          scope=root, multi=stacked,
                          wrappers=[zoo.WrapperSpec(kinds[w].kind, 1) for w in wrapped])
        block = _wrapper_specs(block, shapes) if wrapped else block
        if block is None:
            continue
        reading = [(spec, prefix) for _, spec, prefix, half, _ in block.wrapped()
                   if half == "fw" and spec.wrapper.side == "input"]
        input_size = (reading[0][0].wrapper.input_size_from(shapes, reading[0][1]) if reading
                      else levels[("fw", 0)][1])
        names = [f"{levels[key][3]}/{rel}" for key in sorted(levels) for rel in levels[key][4]]
        names += [f"{prefix}/{rel}" for _, spec, prefix, half, index in block.wrapped()
                  for rel in spec.wrapper.variables(spec, 1, 1)]
        expected = block.variables(input_size)
        if expected != {name: tuple(shapes[name]) for name in names}:
            continue  # the levels do not chain (sizes) as one block: left as other variables
        found.append(Found(block, input_size, sorted(names)))
    in_blocks = {name for f in found for name in f.variables}
    return found, {name: shape for name, shape in shapes.items() if name not in in_blocks}


def guess(name, shape, shapes):
    """What a variable no block uses probably is."""
    leaf = name.rsplit("/", 1)[-1]
    parent = name.rsplit("/", 1)[0] if "/" in name else ""
    if leaf in SLOT_SUFFIXES:
        return f"optimizer state ({leaf}) of {parent}"
    if leaf in ("beta1_power", "beta2_power"):
        return "Adam's decay-rate power accumulator"
    if leaf == "global_step":
        return "the global step"
    if len(shape) == 2 and re.search(r"embed", name, re.I):
        return f"an embedding: {shape[0]} ids x {shape[1]} dimensions"
    if len(shape) == 2:
        for other, other_shape in shapes.items():
            if other != name and tuple(other_shape) == (shape[1],) and (
                    other.rsplit("/", 1)[0] == parent or _tutorial_pair(name, other)):
                return f"a dense layer's kernel [{shape[0]}, {shape[1]}] (bias: {other})"
        return f"a matrix [{shape[0]}, {shape[1]}] (a dense kernel or an embedding)"
    if len(shape) == 1:
        for other, other_shape in shapes.items():
            if len(other_shape) == 2 and other_shape[1] == shape[0] and (
                    other.rsplit("/", 1)[0] == parent or _tutorial_pair(other, name)):
                return f"a dense layer's bias (kernel: {other})"
        return f"a vector [{shape[0]}]"
    return "unknown" if shape else "a scalar"


def _tutorial_pair(kernel, bias):
    """The tutorials' unnamed `Variable` (W) and `Variable_1` (b)."""
    m = re.match(r"^(.*)Variable(?:_(\d+))?$", kernel)
    return bool(m) and bias == f"{m.group(1)}Variable_{int(m.group(2) or 0) + 1}"


# Scopes of recurrent cells TF1 code wrote that the zoo has no family for yet: their variables
# are named as such (never taken for a cell of another family), and a checkpoint holding only
# them is refused naming them.
NOT_CONVERTED = {
    "lstm_fused_cell": "tf.contrib's LSTMBlockFusedCell",
    "attention_wrapper": "tf.contrib.seq2seq's AttentionWrapper (an attention decoder; "
                         "legacy_rnn.seq2seq reproduces it and has its Keras twin, "
                         "docs/migration.md)",
    "attention_decoder": "legacy_seq2seq's attention_decoder (legacy_rnn.seq2seq reproduces it "
                         "and has its Keras twin, docs/migration.md)",
    "opaque_kernel": "a cuDNN layer's opaque parameter buffer, whose layout only the cuDNN "
                     "library knows (on a machine with a GPU, read it into canonical weights: "
                     "TF 1.15's CudnnLSTM / CudnnGRU layer restores it and saves the canonical "
                     "names, or tf.raw_ops.CudnnRNNParamsToCanonical returns them; then convert "
                     "that checkpoint; docs/migration.md)",
    # The wrappers the zoo converts, where they sit elsewhere:
    **{w.scope: f"tf.contrib's {w.tf1_name} (converted around a forward or bidirectional "
                "driver's cell or MultiRNNCell; not inside a MultiRNNCell's level nor a "
                "stack_bidirectional one)" for w in wrappers.WRAPPERS.values()},
}


# Scopes of wrappers the zoo does not convert, whose cells are not a block of their own: a cell
# read with them would be misread (an attention decoder's cell reads concat([input, attention]);
# an EmbeddingWrapper's cell reads the embedding, not the input).
UNCONVERTED_WRAPPERS = {scope for scope in NOT_CONVERTED if scope.endswith("_wrapper")
                        and scope not in wrappers.by_scope()} | {"attention_decoder"}


DECODER_GUESS = ("part of an attention decoder (legacy_seq2seq's embedding_attention_seq2seq or "
                 "tf.contrib.seq2seq's AttentionWrapper): `convert` converts it, with the .meta")


# An AttentionWrapper's scope: contrib's default name, or nmt's `AttentionWrapper(...,
# name="attention")`. What sits in it besides the cell's scope:
DECODER_WRAPPER_NAMES = ("attention_wrapper", "attention")
DECODER_WRAPPER_PARTS = ("bahdanau_attention", "luong_attention", "attention_layer")


def decoder_wrappers(names):
    """The scopes of tf.contrib.seq2seq AttentionWrappers among the variable names: a scope named
    as the wrapper is (`DECODER_WRAPPER_NAMES`) holding a cell's scope (`<w>/<cell>/.../kernel`),
    in a checkpoint that has a mechanism's `memory_layer/kernel`. (An AttentionCellWrapper's
    `attention/` scope holds variables, no cell: it is not one.)"""
    if not any(n.endswith("memory_layer/kernel") for n in names):
        return set()
    found = set()
    for name in names:
        parts = name.split("/")
        for i, part in enumerate(parts[:-2]):
            if part in DECODER_WRAPPER_NAMES and parts[i + 1] not in DECODER_WRAPPER_PARTS \
                    and parts[-1] == "kernel":
                found.add("/".join(parts[:i + 1]))
    return found


def legacy_seq2seq_scopes(names):
    """The scopes of legacy_seq2seq embedding_attention_seq2seq models among the names (the
    scope above `embedding_attention_decoder/attention_decoder/`)."""
    return {f"/{name}".split("/embedding_attention_decoder/")[0][1:] for name in names
            if "/embedding_attention_decoder/attention_decoder/" in f"/{name}"}


def decoder_owned(names):
    """The names that belong to an attention decoder, which `legacy_rnn.seq2seq` finds and
    converts (blockwise): everything under a legacy_seq2seq embedding_attention_seq2seq's scope
    (its encoder's EmbeddingWrapper included), and under the scope holding a tf.contrib.seq2seq
    AttentionWrapper."""
    scopes = {wrapper.rpartition("/")[0] for wrapper in decoder_wrappers(names)} | \
        legacy_seq2seq_scopes(names)
    return {n for n in names for scope in scopes
            if not scope or n.startswith(scope + "/")}


def not_converted(names):
    """{what: [variable names]} of the cells the zoo has no family for yet."""
    out = {}
    for name in names:
        for scope, what in NOT_CONVERTED.items():
            if f"/{scope}/" in f"/{name}/" or name.endswith("/" + scope) or name == scope:
                out.setdefault(what, []).append(name)
    return out


def inspect_shapes(shapes, source, view=None, none_is_fine=False):
    """(blocks, other variables with guesses); UserError if nothing recurrent is there (unless
    `none_is_fine`: a whole model may have no recurrent block)."""
    found, rest = discover(shapes, view)
    decoders = decoder_owned(rest)
    unknown = not_converted(set(rest) - decoders)
    others = [{"name": n, "shape": list(s),
               "guess": (DECODER_GUESS if n in decoders
                         and n.rsplit("/", 1)[-1] not in SLOT_SUFFIXES else
                         next((f"{what}: not converted yet" for what, names in unknown.items()
                               if n in names), None) or guess(n, s, shapes))}
              for n, s in sorted(rest.items())]
    if not found and unknown:  # cells it cannot convert, whole model or not
        held = "; ".join(f"{what} ({len(names)} variables, e.g. {names[0]})"
                         for what, names in unknown.items())
        raise UserError(f"{source} holds {held}. This tool does not convert that kind of cell "
                        "yet (docs/migration.md lists what it converts); nothing was written.")
    if not found and not none_is_fine and not decoders:
        listed = ", ".join(f"{n} {list(s)}" for n, s in sorted(shapes.items())[:10])
        raise UserError(f"{source} holds no recurrent layer this tool recognises: no set of "
                        "variables has the names and shapes of a "
                        f"{' / '.join(f.tf1_name for f in zoo.FAMILIES.values())} "
                        f"({len(shapes)} variables: {listed}{' ...' if len(shapes) > 10 else ''})."
                        " Checkpoints written before TF 1.2 (weights / biases, Linear/Matrix) are "
                        "read under today's names; other cells (tf.contrib's EmbeddingWrapper "
                        "outside legacy_seq2seq, a projection wrapper inside a MultiRNNCell's "
                        "level, a cuDNN layer's opaque buffer without its canonical names) are "
                        "not converted yet.")
    return found, others
