"""Checkpoints written before TF 1.2, under today's names: the most reported TF1 migration failure
("Key .../basic_lstm_cell/kernel not found in checkpoint").

TF 1.2 renamed the cells' variables (`weights` / `biases` -> `kernel` / `bias`); TF 1.0 had renamed
TF 0.x's scopes (`BasicLSTMCell/Linear/Matrix`, `MultiRNNCell/Cell0`, `LSTMCell/W_0`, ...). Each
cell family lists its old names (`CellFamily.old_names`); around the cells, `MultiRNNCell/CellK`
becomes `multi_rnn_cell/cell_K` and the TF 0.x drivers' default scopes (`RNN`, `BiRNN/FW`,
`BiRNN/BW`) today's (`rnn`, `bidirectional_rnn/fw`, `.../bw`) unless `keep_scopes` (for code that
passed `scope="RNN"` itself). Optimizer slots follow their variable; everything else keeps its
name.

    python -m legacy_rnn.upgrade --checkpoint=OLD --output=NEW_PREFIX [--keep_scopes]

writes a copy under today's names, reads it back and compares it with the original value by
value; a name collision or an old layout that does not make a whole cell is refused, and nothing
is written then. `inspect` and `convert` read old checkpoints directly with the same table.
"""
import os
import re

import numpy as np
from absl import app, flags

from legacy_rnn import lazy
from legacy_rnn.cli import programs
from legacy_rnn.errors import UserError

# Loaded when a checkpoint is read: the flags are checked first (legacy_rnn/lazy.py).
zoo = lazy.module("legacy_rnn.zoo")
discover = lazy.module("legacy_rnn.conversion.discover")

DRIVER_SCOPES = {"RNN": "rnn", "BiRNN": "bidirectional_rnn", "FW": "fw", "BW": "bw"}

def _split_slot(name):
    base, _, leaf = name.rpartition("/")
    return (base, leaf) if base and leaf in discover.SLOT_SUFFIXES else (name, "")


def _prefix(prefix, keep_scopes):
    """Today's names of the scopes above a cell."""
    parts, out, i = prefix.split("/") if prefix else [], [], 0
    while i < len(parts):
        m = re.fullmatch(r"Cell(\d+)", parts[i + 1]) if i + 1 < len(parts) else None
        if parts[i] == "MultiRNNCell" and m:
            out += ["multi_rnn_cell", f"cell_{m.group(1)}"]
            i += 2
            continue
        out.append(parts[i] if keep_scopes else DRIVER_SCOPES.get(parts[i], parts[i]))
        i += 1
    return "/".join(out)


def today_names(names, keep_scopes=False):
    """({old name: today's name} of the recurrent variables written before TF 1.2, {era: count}),
    both empty for a checkpoint with today's names."""
    renames, eras = {}, {}
    for name in names:
        base, slot = _split_slot(name)
        for family in zoo.FAMILIES.values():
            for era, (scope, table) in family.old_names.items():
                for old, new in table.items():
                    tail = f"{scope}/{old}"
                    if base != tail and not base.endswith("/" + tail):
                        continue
                    prefix = _prefix(base[:-len(tail)].rstrip("/"), keep_scopes)
                    cell = "/".join(p for p in (prefix, family.scope) if p)
                    renames[name] = f"{cell}/{new}" + (f"/{slot}" if slot else "")
                    eras[era] = eras.get(era, 0) + (0 if slot else 1)
    if not renames:
        return {}, {}
    return renames, {era: n for era, n in eras.items() if n}


def check(shapes, renames):
    """{today's name: old name}; UserError for two variables that would get one name."""
    today = {}
    for name in shapes:
        new = renames.get(name, name)
        if new in today:
            raise UserError(
                f"{today[new]} and {name} would both become {new}: the checkpoint holds a "
                "variable under today's name beside its pre-1.2 one. Nothing was written; remove "
                "one of them from the checkpoint (or upgrade a copy saved before the other was "
                "added).")
        today[new] = name
    return today


def renamed_shapes(shapes, renames):
    return {renames.get(name, name): shape for name, shape in shapes.items()}


def whole_cells(shapes, renames):
    """UserError naming a cell whose pre-1.2 variables do not make a whole cell of its family."""
    found, _ = discover.find_cells(renamed_shapes(shapes, renames))
    used = {name for prefix, _, _, own in found for name in
            (f"{prefix}/{rel}" for rel in own)}
    stray = sorted(old for old, new in renames.items()
                   if not _split_slot(old)[1] and new not in used)
    if stray:
        raise UserError(
            f"{', '.join(stray[:4])}{' ...' if len(stray) > 4 else ''} have pre-1.2 cell names "
            "but do not make a whole cell of that family under today's names (a variable is "
            "missing or has another shape). Nothing was written; this is not a layout the "
            "upgrade knows. Rename them by hand, or report the layout.")


def upgrade(checkpoint, output, keep_scopes=False, overwrite=False):
    """Writes the checkpoint under today's names at `output`; returns ({old: new}, {era: n})."""
    from legacy_rnn.conversion import blockwise
    from legacy_rnn.training import checkpoints
    prefix = checkpoints.resolve_prefix(checkpoint)
    shapes = checkpoints.list_variables(prefix)
    renames, eras = today_names(shapes, keep_scopes)
    if not renames:
        raise UserError(f"{prefix} holds no recurrent variable under pre-TF-1.2 names "
                        "(weights / biases, Linear/Matrix, W_0, MultiRNNCell/Cell0, ...): nothing "
                        "to upgrade. inspect and convert read it as it is.")
    check(shapes, renames)
    whole_cells(shapes, renames)
    if os.path.abspath(output) == os.path.abspath(prefix):
        raise UserError(f"--output={output} is the checkpoint being upgraded. Write the copy "
                        "under another prefix: the original stays as it is.")
    if os.path.exists(output + ".index") and not overwrite:
        raise UserError(f"{output}.index exists. Choose another --output prefix, or pass "
                        "--overwrite.")
    values = checkpoints.load_tensors(prefix, list(shapes))
    blockwise.save_tf1({renames.get(n, n): v for n, v in values.items()}, output)
    back = checkpoints.load_tensors(output, [renames.get(n, n) for n in shapes])
    differ = [n for n, v in values.items() if back[renames.get(n, n)].dtype != v.dtype
              or not np.array_equal(back[renames.get(n, n)], v)]
    if differ:
        for suffix in (".index", ".data-00000-of-00001"):
            if os.path.exists(output + suffix):
                os.remove(output + suffix)
        raise UserError(f"The copy read back differs from {prefix} in {', '.join(differ[:4])}; "
                        "it was removed. Check the disk and rerun.")
    return renames, eras


def define_flags(flag_values=flags.FLAGS):
    fv = flag_values
    return {
        "checkpoint": flags.DEFINE_string("checkpoint", None, "The old checkpoint (a prefix, or "
                                          "a directory with a `checkpoint` file).",
                                          flag_values=fv),
        "output": flags.DEFINE_string("output", None, "Prefix of the copy to write.",
                                      flag_values=fv),
        "keep_scopes": flags.DEFINE_bool("keep_scopes", False, "Keep TF 0.x driver scopes (RNN, "
                                         "BiRNN/FW, BiRNN/BW) as they are: for code that passes "
                                         "those scopes itself.", flag_values=fv),
        "overwrite": flags.DEFINE_bool("overwrite", False, "Replace --output if it exists.",
                                       flag_values=fv),
    }


def main(holders, argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    value = {name: holder.value for name, holder in holders.items()}
    for name in ("checkpoint", "output"):
        if value[name] is None:
            raise app.UsageError(f"--{name} is required.")
    programs.start_tensorflow()
    renames, eras = upgrade(value["checkpoint"], value["output"], value["keep_scopes"],
                            value["overwrite"])
    print(f"wrote {value['output']}: {len(renames)} variables renamed "
          f"({', '.join(f'{n} {era}' for era, n in sorted(eras.items()))} names), read back "
          "and equal to the original")
    for old, new in sorted(renames.items()):
        print(f"  {old} -> {new}")
    return 0
