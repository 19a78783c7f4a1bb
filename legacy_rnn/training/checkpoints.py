"""Reading tf.compat.v1 checkpoints of the experiments, this project's or the tutorials' own.

The tutorial scripts left the output layer unnamed (`Variable` = W, created first, and
`Variable_1` = b); this project names them `output/weights` and `output/biases`. Both are accepted.
What a checkpoint must hold comes from the experiment (its zoo block's variables and the output
layer); the units are read from the shapes.
"""
import os

import numpy as np

from legacy_rnn import lazy
from legacy_rnn.errors import UserError
from legacy_rnn.experiments.graphs import OUTPUT_BIASES, OUTPUT_WEIGHTS

tf = lazy.module("tensorflow")  # loaded when used: the flags are checked first (lazy.py)

TUTORIAL_NAMES = {OUTPUT_WEIGHTS: "Variable", OUTPUT_BIASES: "Variable_1"}
READ_FIX = ("Pass the prefix of a tf.compat.v1 checkpoint (the path before .index / "
            ".data-00000-of-00001), or its directory.")


def _slash_prefix(path):
    """`DIR/` when DIR holds a checkpoint saved under a prefix ending in `/` (its files are
    `DIR/.index`, `DIR/.data-...`; TF writes "." into DIR's `checkpoint` index then, which TF
    itself cannot read back)."""
    if os.path.isdir(path) and os.path.exists(os.path.join(path, ".index")):
        return os.path.join(path, "")
    return None


def _reader(prefix):
    """TF's checkpoint reader for exactly `prefix`: `tf.train.load_checkpoint` would take a
    prefix ending in `/` for a directory and look for its `checkpoint` index instead."""
    from tensorflow.python.training import py_checkpoint_reader
    return py_checkpoint_reader.NewCheckpointReader(prefix)


def resolve_prefix(path):
    """A checkpoint prefix from a prefix or a directory holding a `checkpoint` file."""
    if _slash_prefix(path):
        return _slash_prefix(path)
    if os.path.isdir(path):
        try:
            latest = tf.train.latest_checkpoint(path)
        except (tf.errors.OpError, ValueError, UnicodeDecodeError) as e:
            raise UserError(
                f"{os.path.join(path, 'checkpoint')} (the index of the checkpoints in {path}) is "
                f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]}). Pass a "
                "checkpoint prefix instead (e.g. DIR/model.ckpt-781), or delete that file and "
                "rerun, which resumes from nothing.") from None
        if latest is None and os.path.exists(os.path.join(path, "checkpoint")):
            raise UserError(
                f"{os.path.join(path, 'checkpoint')} names a checkpoint whose files are missing "
                f"from {path}. Restore them, pass an existing prefix (DIR/model.ckpt-STEP), or "
                "delete that `checkpoint` file to start afresh.")
        if latest is None:
            raise UserError(f"{path} is a directory without a checkpoint in it. Pass a checkpoint "
                            "prefix (e.g. DIR/model.ckpt-781) or a --model_dir a run wrote.")
        return latest
    return path


def list_variables(prefix):
    """{variable name: shape} of the checkpoint at `prefix`; UserError if it cannot be read."""
    try:
        return {name: tuple(shape)
                for name, shape in sorted(_reader(prefix).get_variable_to_shape_map().items())}
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"Cannot read a checkpoint at {prefix} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:300]}). {READ_FIX}") from None


def load_tensors(prefix, names):
    """{name: array} of the checkpoint variables `names`; UserError naming a damaged file."""
    try:
        reader = _reader(prefix)
        return {name: reader.get_tensor(name) for name in names}
    except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: a short .data file
        raise UserError(
            f"The checkpoint {prefix} is damaged: its variables cannot be read "
            f"({type(e).__name__}: {str(e).splitlines()[0][:300]}). The .data file is probably "
            "truncated or from another save: use another checkpoint (a --model_dir keeps the "
            "last three).") from None


def _name_map(available, names):
    """{variable: checkpoint variable} for the names present; tutorial names accepted."""
    found = {}
    for name in names:
        for candidate in (name, TUTORIAL_NAMES.get(name)):
            if candidate in available:
                found[name] = candidate
                break
    return found


def _listed(available):
    names = sorted(available)
    return f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}"


def fit(experiment, config, shapes, source):
    """`config` with the units the variables {name: shape} hold; UserError naming each variable
    that does not fit `experiment`."""
    block = experiment.block(config)
    first_name, first_level, first_prefix = block.cells()[0]
    units = first_level.cell.family.units_from(
        {k[len(first_prefix) + 1:]: v for k, v in shapes.items()
         if k.startswith(first_prefix + "/")})
    if not units:
        raise UserError(f"{source} does not fit {experiment.name}: the variables under "
                        f"{first_prefix}/ are not a {first_level.cell.family.tf1_name}.")
    config = experiment.with_units(config, units)
    block = experiment.block(config)
    sizes = block.input_sizes(experiment.input_size(config))
    problems = []
    for name, level, prefix in block.cells():
        relative = {k[len(prefix) + 1:]: v for k, v in shapes.items() if k.startswith(prefix + "/")}
        found = level.cell.family.recognize(relative)
        if found is None:
            problems.append(f"the variables under {prefix}/ ({relative}) are not a "
                            f"{level.cell.family.tf1_name} of {units} units")
        elif found[1] != sizes[name]:
            problems.append(f"the cell reads {found[1]} inputs per step, {experiment.name} feeds "
                            f"{sizes[name]}")
    labels = {OUTPUT_WEIGHTS: "the output weights", OUTPUT_BIASES: "the output biases"}
    for pairs in experiment.plain_layers(config).values():
        for name, shape in pairs:
            if shapes[name] != tuple(shape):
                problems.append(f"{labels.get(name, name)} have shape {list(shapes[name])}, "
                                f"{experiment.name} needs {list(shape)}")
    if problems:
        raise UserError(f"{source} does not fit {experiment.name}: {'; '.join(problems)}.")
    return config


def checkpoint_map(prefix, experiment, config, candidates=()):
    """({graph variable: checkpoint variable}, config with the checkpoint's units).

    Raises UserError naming what is missing or mis-shaped, and which of `candidates` (other
    experiments) the checkpoint looks like when it is another one.
    """
    available = list_variables(prefix)
    for candidate in experiment.checkpoint_configs(config, available):
        names = list(experiment.variables(candidate))
        if len(_name_map(available, names)) == len(names):
            config = candidate
            break
    names = list(experiment.variables(config))
    found = _name_map(available, names)
    missing = [n for n in names if n not in found]
    if missing:
        others = [e.name for e in candidates if e.name != experiment.name
                  and len(_name_map(available, e.variables(e.config))) == len(e.variables(e.config))
                  and set(e.variables(e.config)) != set(names)]
        hint = (f" It holds the variables of {' / '.join(others)}: pass that model instead."
                if others else f" It holds: {_listed(available)}.")
        raise UserError(f"{prefix} is not a {experiment.name} checkpoint: it has no "
                        f"{', '.join(missing)}.{hint}")
    shapes = {name: available[ckpt] for name, ckpt in found.items()}
    return found, fit(experiment, config, shapes, prefix)


def read_weights(prefix, experiment, config=None, candidates=()):
    """({graph variable: float32 array}, config with the checkpoint's units)."""
    prefix = resolve_prefix(prefix)
    names, config = checkpoint_map(prefix, experiment, config or experiment.config, candidates)
    tensors = load_tensors(prefix, list(names.values()))
    return {name: np.asarray(tensors[ckpt]) for name, ckpt in names.items()}, config
