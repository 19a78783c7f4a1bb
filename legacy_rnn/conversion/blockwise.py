"""Any TF1 RNN checkpoint -> one Keras 3 block per recurrent block, verified; and back.

To Keras (`to_keras_blocks`): the blocks are found from the variable names and shapes
(`discover`); the options that are not variables come from the `.meta` graph when the Saver wrote
one (`metagraph`), else from the caller's flags, else TF1's defaults, and each value says where it
came from. Every block is then checked on random inputs: against the user's own graph whenever
the `.meta` is there (`verify`: the cells fed where the graph computes them, dropout
neutralised), and only without one against this project's TF1 rebuild (`zoo`), the options it
assumed named in the report and in `blocks.json`. Above `TOLERANCE` the block is reported as
failed and its file is not written (unless `force`). Files go to a temporary directory first,
renamed into place at the end.

To TF1 (`to_tf1_checkpoint`): a Keras 3 model's recurrent layers written as a tf.compat.v1
checkpoint under the names the TF1 drivers give them, so TF1 code restores them.
"""
import dataclasses
import os
import shutil
import tempfile
import zipfile

import numpy as np
import tensorflow as tf

from legacy_rnn import atomic, zoo
from legacy_rnn.cli import interrupts
from legacy_rnn.conversion import discover, metagraph, upgrade, verify
from legacy_rnn.errors import UserError
from legacy_rnn.facts import TOLERANCE
from legacy_rnn.training import checkpoints
from legacy_rnn.zoo import blocks

# The options a flag can give when no .meta records them (`convert --forget_bias=...`).
OPTIONS = ("forget_bias", "cell_clip", "proj_clip", "activation", "attn_length")
TF1_DEFAULT = "TF1's default"


@dataclasses.dataclass
class BlockResult:
    found: discover.Found
    block: zoo.Block
    options: dict  # {option: {"value": ..., "source": ...}}
    verified_against: str
    largest_difference: float
    file: str
    status: str = ""
    neutralised: list = dataclasses.field(default_factory=list)  # dropout, keep probabilities
    assumed: list = dataclasses.field(default_factory=list)  # options not read from the graph

    @property
    def ok(self):
        return self.largest_difference <= TOLERANCE

    @property
    def load_with(self):
        registered = any(level.cell.family.registered_twin(level.cell)
                         for level in (*self.block.levels, *self.block.backward_levels))
        return "legacy_rnn.keras_cells" if registered else None

    def record(self):
        return {"scope": self.block.prefix, "file": self.file,
                "variables": self.found.variables, "load_with": self.load_with,
                "structure": self.block.describe(), "input_size": self.found.input_size,
                "output_size": self.block.output_size, "options": self.options,
                "verified_against": self.verified_against, "neutralised": self.neutralised,
                "assumed": self.assumed, "largest_difference": self.largest_difference,
                "status": self.status}


# --- Options ----------------------------------------------------------------------------------

def _with_options(found, view, meta, given):
    """The block with each cell's options, and {option: {"value", "source"}} for the report."""
    seen = {}  # option -> [(cell prefix, value, source)]

    def level_with(level, prefix):
        family = level.cell.family
        from_graph = metagraph.cell_options(view, prefix, family)
        options = {}
        for name in family.option_names(level.cell):
            if name in from_graph:
                value, source = from_graph[name], f"the .meta graph ({meta})"
            elif given.get(name) is not None:
                value, source = given[name], f"--{name}"
            else:
                value, source = family.option_default(level.cell, name), TF1_DEFAULT
            options[name] = value
            seen.setdefault(name, []).append((prefix, value, source))
        spec = zoo.CellSpec.make(level.cell.kind, level.cell.units,
                                 **{**dict(level.cell.options), **options})
        return dataclasses.replace(level, cell=spec)

    cells = {name: prefix for name, _, prefix in found.block.cells()}
    b = found.block
    levels = [level_with(level, cells[f"fw_{k}"]) for k, level in enumerate(b.levels)]
    backward = ([level_with(level, cells[f"bw_{k}"]) for k, level in enumerate(b.backward_levels)]
                if b.direction != "forward" else None)
    wrapped = _wrappers_with_options(b, view, meta, seen)
    driver = b.driver
    if view is not None and b.direction != "stack_bidirectional":
        driver = "dynamic" if metagraph.is_dynamic(view, b) else "static"
    report = {}
    for name, cells_seen in seen.items():
        values = {prefix: value for prefix, value, _ in cells_seen}
        sources = sorted({source for _, _, source in cells_seen})
        same = len(set(map(repr, values.values()))) == 1
        report[name] = {"value": next(iter(values.values())) if same else values,
                        "source": "; ".join(sources)}
    return dataclasses.replace(b, levels=tuple(levels), driver=driver, wrappers=wrapped,
                               backward=tuple(backward) if backward else None), report


def _wrappers_with_options(block, view, meta, seen):
    """The block's wrappers with their activations from the graph (else TF1's default: none),
    recorded in `seen` under `<wrapper> activation`."""
    out = {}
    for _, spec, prefix, _, index in block.wrapped():
        if not spec.wrapper.has_activation:
            out.setdefault(index, spec)
            continue
        name = f"{spec.wrapper.tf1_name} activation"
        shown = metagraph.wrapper_options(view, prefix, spec.wrapper).get("activation")
        value, source = (shown, f"the .meta graph ({meta})") if shown else ("linear", TF1_DEFAULT)
        seen.setdefault(name, []).append((prefix, value, source))
        new = dataclasses.replace(spec, activation=value)
        if out.setdefault(index, new) != new:
            raise UserError(
                f"{block.prefix}/: the forward and backward {spec.wrapper.tf1_name}s apply "
                f"different activations ({out[index].activation}, {value}); the zoo converts "
                "bidirectional blocks whose two directions are wrapped alike.")
    return tuple(out[i] for i in range(len(out)))


# --- TF1 -> Keras -------------------------------------------------------------------------------

def read_blocks(checkpoint, given=None, none_is_fine=False):
    """What `inspect` and `convert` both read: (checkpoint prefix, .meta path or None, other
    variables, [(Found, block with its options, options report)], {today's name: name in the
    checkpoint} of variables saved before TF 1.2 under old names). With a `.meta`, the graph
    decides the families, the driver and the options."""
    prefix = checkpoints.resolve_prefix(checkpoint)
    shapes = checkpoints.list_variables(prefix)
    renames, _ = upgrade.today_names(shapes)
    meta = metagraph.meta_path(prefix)
    if renames:
        upgrade.check(shapes, renames)
        shapes = upgrade.renamed_shapes(shapes, renames)
        meta = None  # its ops read the old names; the options then come from flags or defaults
    view = metagraph.GraphView(metagraph.read_graph(meta)) if meta else None
    found, others = discover.inspect_shapes(shapes, prefix, view, none_is_fine)
    return (prefix, meta, others, [(f, *_with_options(f, view, meta, given or {})) for f in found],
            {new: old for old, new in renames.items()})


def to_keras_blocks(checkpoint, output_dir, overwrite=False, force=False, given=None, seed=0):
    """Writes one `.keras` file per recurrent block of `checkpoint` and `blocks.json` into
    `output_dir`; returns (results, other variables). Failed blocks are written only with
    `force`."""
    if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)) \
            and not overwrite:
        raise UserError(f"--output={output_dir} exists and is not an empty directory. Choose "
                        "another --output, or pass --overwrite to replace it.")
    prefix, meta, others, read, old_names = read_blocks(checkpoint, given)
    rng = np.random.default_rng(seed)
    results = [convert_block(f, block, options, prefix, meta, old_names, rng)
               for f, block, options in read]
    decoders = _decoders(prefix, meta, old_names)
    _write(output_dir, results, others, force, prefix, decoders)
    return [r for r, _ in results], others


def _decoders(prefix, meta, old_names):
    """[(Found, its weights)] of the checkpoint's attention decoders: tf.contrib.seq2seq's
    (`legacy_rnn.seq2seq.checkpoint`) and legacy_seq2seq's embedding_attention_seq2seq
    (`legacy_rnn.seq2seq.legacy_checkpoint`). Each is checked against the user's graph, so a
    checkpoint without its `.meta` has its decoder named, not converted."""
    from legacy_rnn.seq2seq import checkpoint as contrib, legacy_checkpoint as legacy
    shapes = checkpoints.list_variables(prefix)
    kinds = [(what, finder) for what, held, finder in (
        ("a tf.contrib.seq2seq attention decoder (an AttentionWrapper's scope)",
         bool(discover.decoder_wrappers(shapes)), contrib.find_decoders),
        ("a legacy_seq2seq attention decoder (attention_decoder/)",
         any(legacy.DECODER in f"/{name}" for name in shapes), legacy.find)) if held]
    if not kinds:
        return []
    if meta is None or old_names:
        raise UserError(f"{prefix} holds {' and '.join(what for what, _ in kinds)}, which is "
                        "converted only with the .meta graph beside the checkpoint: the decoder "
                        "is checked against it. Keep the .meta the Saver wrote "
                        "(write_meta_graph=True) and convert again.")
    view = metagraph.GraphView(metagraph.read_graph(meta))
    return [(f, checkpoints.load_tensors(prefix, f.variables))
            for _, finder in kinds for f in finder(shapes, view, prefix)]


def convert_block(f, block, options, prefix, meta, old_names, rng):
    """(BlockResult, its Keras block with the checkpoint's weights) of one block `read_blocks`
    found, checked against the user's graph where the `.meta` shows the block, else against
    this project's rebuild."""
    with interrupts.phase(f"converting {f.block.prefix}"):
        stored = checkpoints.load_tensors(prefix, [old_names.get(n, n) for n in f.variables])
        weights = {n: stored[old_names.get(n, n)] for n in f.variables}
        model = zoo.keras_block(block, f.input_size, name=f.name)
        blocks.to_keras(block, model, weights)
        checked = verify.against_graph(block, model, prefix, meta, rng) if meta else None
        unchecked = checked[1] if checked is not None and checked[0] is None else None
        if unchecked:
            checked = None
        if checked is not None:
            difference, how, neutralised = checked
            against = f"the user's graph ({os.path.basename(meta)}: {how})"
            assumed = []
        else:
            difference = verify.against_rebuild(block, model, weights, f.input_size, rng)
            why = (unchecked if unchecked else
                   "a checkpoint with pre-TF-1.2 names (its .meta, if any, reads those)"
                   if old_names else "no .meta beside the checkpoint" if not meta else
                   "a static driver's wrapped cell whose wrappers' steps the graph does not "
                   "show where they can be fed (inside the driver's cond branches with "
                   "sequence_length, or an EmbeddingWrapper's lookup)" if
                   block.wrappers and block.driver == "static" else
                   "the .meta does not show where the block's cells run: neither steps of "
                   "concat([x, h]) @ kernel nor dynamic_rnn calls where TF1 names them nor "
                   "a fused op over the sequence")
            against = f"this project's TF1 rebuild of the block ({why})"
            neutralised = []
            assumed = sorted(name for name, option in options.items()
                             if not option["source"].startswith("the .meta graph"))
    return BlockResult(f, block, options, against, difference, f"{f.name}.keras",
                       neutralised=neutralised, assumed=assumed), model


def _write(output_dir, results, others, force, source, decoders=()):
    with atomic.directory(output_dir, "--output") as fresh:
        for result, model in results:
            if result.ok or force:
                model.save(os.path.join(fresh, result.file))
                result.status = "written" if result.ok else "written despite failing (--force)"
            else:
                result.status = "failed: not written"
        reports = [found.convert(source, fresh, weights) for found, weights in decoders]
        converted = {name: r["file"] for (found, _), r in zip(decoders, reports) if r["ok"]
                     for name in found.variables}
        for other in others:
            if other["name"] in converted:
                other["guess"] = f"the attention decoder in {converted[other['name']]}"
        atomic.write_json(os.path.join(fresh, "blocks.json"), {
            "checkpoint": source, "tolerance": TOLERANCE,
            "blocks": [r.record() for r, _ in results], "decoders": reports,
            "other_variables": others})


# --- Keras -> TF1 -------------------------------------------------------------------------------

def spec_from_keras_cell(cell, basic=False):
    """The zoo CellSpec of a Keras 3 cell; UserError for one with no TF1 equivalent. Where two
    families compute the cell (Keras's LSTMCell is a BasicLSTMCell and an LSTMCell), `basic`
    takes the one with fewer variables."""
    name = type(cell).__name__
    recurrent = getattr(cell, "recurrent_activation", None)
    if recurrent is not None and keras_activation(recurrent) != "sigmoid":
        raise UserError(f"{name} with recurrent_activation={keras_activation(recurrent)!r}: TF1's "
                        "cells use sigmoid gates. (Keras 2's hard_sigmoid is another function in "
                        "Keras 3; see docs/migration.md.)")
    if not getattr(cell, "use_bias", True):
        raise UserError(f"{name} with use_bias=False has no TF1 cell equivalent (TF1 cells "
                        "always have a bias).")
    claims = [(family, options) for family in zoo.FAMILIES.values()
              for options in [family.from_keras_cell(cell, keras_activation)]
              if options is not None]
    if not claims:
        raise UserError(f"{name} is not a cell the zoo converts ("
                        f"{', '.join(sorted({f.keras_name for f in zoo.FAMILIES.values()}))}).")
    claims.sort(key=lambda claim: len(claim[0].variable_names()), reverse=not basic)
    family, options = claims[0]
    return zoo.CellSpec.make(family.kind, cell.units, **options)


def keras_activation(fn):
    import keras
    name = keras.activations.serialize(fn)
    name = name if isinstance(name, str) else name.get("config", name)
    return "linear" if name is None else name


def _recurrent_structure(model, basic, driver):
    """(Block, {zoo cell name: Keras RNN layer}) of a Keras model's recurrent layers."""
    import keras
    names = {layer.name for layer in model.layers}
    if "fw_0" in names:  # a block this converter wrote
        fw = sorted((n for n in names if n.startswith("fw_") and n[3:].isdigit()),
                    key=lambda n: int(n[3:]))
        bw = sorted((n for n in names if n.startswith("bw_") and n[3:].isdigit()),
                    key=lambda n: int(n[3:]))
        direction = ("forward" if not bw else "stack_bidirectional" if "concat_0" in names
                     else "bidirectional")
        layers = {n: model.get_layer(n) for n in fw + bw}
        levels = [spec_from_keras_cell(layers[n].cell, basic) for n in fw]
        backward = [spec_from_keras_cell(layers[n].cell, basic) for n in bw] or None
        block = zoo.Block(levels, direction, driver, backward=backward,
                          wrappers=_wrappers_from_keras(model, names))
        layers.update({name: model.get_layer(name) for name, *_ in block.wrapped()})
        return block, layers
    recurrent = [layer for layer in model.layers
                 if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))]
    if len(recurrent) == 1 and isinstance(recurrent[0], keras.layers.Bidirectional):
        bidi = recurrent[0]
        layers = {"fw_0": bidi.forward_layer, "bw_0": bidi.backward_layer}
        return zoo.Block([spec_from_keras_cell(bidi.forward_layer.cell, basic)],
                         "bidirectional", driver,
                         backward=[spec_from_keras_cell(bidi.backward_layer.cell, basic)]), layers
    if recurrent and all(isinstance(layer, keras.layers.RNN) for layer in recurrent):
        layers = {f"fw_{k}": layer for k, layer in enumerate(recurrent)}
        return zoo.Block([spec_from_keras_cell(layer.cell, basic) for layer in recurrent],
                         "forward", driver), layers
    raise UserError(
        f"{model.name} has {len(recurrent)} recurrent layers"
        f"{' mixing Bidirectional and plain ones' if recurrent else ''}: this converter writes "
        "one TF1 block (one RNN layer, a stack of them = MultiRNNCell, one Bidirectional layer, or "
        "a block file it wrote). Convert a sub-model holding one block.")


def _wrappers_from_keras(model, names):
    """The WrapperSpecs of a block file's wrapper layers (`fw_<kind>_<index>`), outermost
    first."""
    found = {}
    for kind, wrapper in zoo.WRAPPERS.items():
        for name in names:
            head, _, index = name.rpartition("_")
            if head == f"fw_{kind}" and index.isdigit():
                spec = wrapper.from_keras_layer(model.get_layer(name), keras_activation)
                if spec is None:
                    raise UserError(f"{model.name}'s layer {name} is not the "
                                    f"{wrapper.tf1_name}'s twin this converter writes.")
                found[int(index)] = spec
    if sorted(found) != list(range(len(found))):
        raise UserError(f"{model.name}'s wrapper layers are numbered {sorted(found)}: a block file "
                        "this converter wrote numbers them 0, 1, ... from the outermost.")
    return tuple(found[i] for i in range(len(found)))


def to_tf1_checkpoint(input_path, output_prefix, scope=None, basic=False, driver="dynamic",
                      overwrite=False):
    """Writes the recurrent layers (and Dense layers) of the Keras model at `input_path` as a
    tf.compat.v1 checkpoint at `output_prefix`; returns ({TF1 name: shape}, Block)."""
    import keras
    if not os.path.isfile(input_path):
        raise UserError(f"--input={input_path} is not a file. Pass a .keras model file.")
    if os.path.exists(output_prefix + ".index") and not overwrite:
        raise UserError(f"{output_prefix}.index exists. Choose another --output prefix, or pass "
                        "--overwrite.")
    if not zipfile.is_zipfile(input_path):
        # Keras would say "File not found" of a file that is there, cut short or not a .keras.
        raise UserError(f"--input={input_path} is not a complete .keras file (a .keras model is a "
                        "zip archive, and this one is truncated, damaged or another format). "
                        "Save the model again with model.save('model.keras'), or copy it again.")
    try:
        model = keras.saving.load_model(input_path)  # safe mode: no code from the file runs
    except (ValueError, OSError, TypeError, KeyError, zipfile.BadZipFile) as e:
        said = " ".join(str(e).split())  # Keras's whole explanation (the fix is at its end)
        never = (" This tool loads in safe mode only and never runs code from a model file: save "
                 "the model without its Lambda layers (the recurrent layers and Dense are what "
                 "it converts) and convert that." if "safe_mode" in said else "")
        raise UserError(f"{input_path} is not a Keras 3 model file this tool can load "
                        f"({type(e).__name__}: {said[:700]}).{never}") from None
    block, layers = _recurrent_structure(model, basic, driver)
    block = dataclasses.replace(block, scope=scope)
    tf1 = blocks.from_keras(block, {name: layer.get_weights() for name, layer in layers.items()})
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense) and layer.name not in layers:
            kernel, *bias = layer.get_weights()
            tf1[f"{layer.name}/kernel"] = kernel
            if bias:
                tf1[f"{layer.name}/bias"] = bias[0]
    save_tf1(tf1, output_prefix)
    return {name: tuple(value.shape) for name, value in tf1.items()}, block


def save_tf1(tf1, output_prefix):
    """Writes {name: array} as a tf.compat.v1 checkpoint at `output_prefix`, atomically."""
    directory = os.path.dirname(os.path.abspath(output_prefix))
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        variables = [tf.compat.v1.get_variable(name, initializer=tf.constant(value))
                     for name, value in tf1.items()]
        saver = tf.compat.v1.train.Saver(variables)
        try:
            os.makedirs(directory, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=".convert-", dir=directory)
        except OSError as e:
            raise UserError(f"Cannot write into {directory} ({e.strerror}).") from None
        try:
            with tf.compat.v1.Session(graph=graph) as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                saver.save(sess, os.path.join(tmp, "ckpt"), write_meta_graph=False,
                           write_state=False)
            with interrupts.deferred():
                for name in os.listdir(tmp):
                    os.replace(os.path.join(tmp, name), output_prefix + name[len("ckpt"):])
        except (OSError, tf.errors.OpError) as e:
            raise UserError(f"Writing the checkpoint {output_prefix} failed "
                            f"({getattr(e, 'strerror', None) or e}).") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    interrupts.raise_pending(f"writing {output_prefix}: it was written completely")
