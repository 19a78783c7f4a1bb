"""Converts a tf.compat.v1 checkpoint of one of the experiments to a Keras 3 `.keras` file.

    python -m legacy_rnn.convert --checkpoint=PREFIX --model=mnist_birnn --output=OUT.keras

PREFIX is a checkpoint prefix or a directory with a `checkpoint` file; this project's checkpoints
and the original tutorial scripts' (unnamed output `Variable`, `Variable_1`) are both accepted.
n_hidden is read from the variable shapes. The result loads anywhere with
`keras.saving.load_model(OUT)`: MNIST models take float32 `[batch, 28, 28]` in [0, 1] and return
logits `[batch, 10]`; the toy model takes `[x [batch, time, 1], seqlen [batch] int32]` and
returns logits `[batch, 2]`.
"""
import os
import sys

from absl import app, flags

from legacy_rnn import checkpoints, experiments
from legacy_rnn.errors import UserError


def convert_checkpoint(checkpoint, model_name, output, overwrite=False):
    """Writes the Keras twin of the checkpoint to `output`; returns the config it holds."""
    if not output.endswith(".keras"):
        raise UserError(f"--output={output} must end in .keras (the Keras 3 file format).")
    if os.path.exists(output) and not overwrite:
        raise UserError(f"{output} exists. Choose another --output, or pass --overwrite.")
    experiment = experiments.get(model_name)
    tf1_weights, config = checkpoints.read_weights(checkpoint, experiment,
                                                   candidates=experiments.EXPERIMENTS.values())
    save_atomically(experiment.to_keras(config, tf1_weights), output)
    return config


def save_atomically(model, output):
    """Saves to a temporary file beside `output`, then renames: never a half-written `output`."""
    directory, name = os.path.split(os.path.abspath(output))
    tmp = os.path.join(directory, f".{name}.partial.keras")
    try:
        model.save(tmp)
        os.replace(tmp, output)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise UserError(f"Cannot write {output} ({e.strerror or e}). Choose a writable --output "
                        "with free space; nothing was written.") from None


def define_flags(flag_values=flags.FLAGS):
    fv = flag_values
    return {
        "checkpoint": flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or directory.",
                                          flag_values=fv),
        "model": flags.DEFINE_enum("model", None, list(experiments.EXPERIMENTS),
                                   "Which experiment the checkpoint holds.", flag_values=fv),
        "output": flags.DEFINE_string("output", None, "The .keras file to write.",
                                      flag_values=fv),
        "overwrite": flags.DEFINE_bool("overwrite", False, "Replace --output if it exists.",
                                       flag_values=fv),
    }


def main(holders, argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    for name in ("checkpoint", "model", "output"):
        if holders[name].value is None:
            raise app.UsageError(f"--{name} is required.")
    config = convert_checkpoint(holders["checkpoint"].value, holders["model"].value,
                                holders["output"].value, holders["overwrite"].value)
    experiment = experiments.get(holders["model"].value)
    print(f"wrote {holders['output'].value}: {experiment.name}, n_hidden {config.n_hidden}, "
          f"{experiment.input_size(config)} inputs per step, {experiment.n_classes} classes")
    return 0


if __name__ == "__main__":
    from legacy_rnn import entry
    entry.tool("legacy_rnn.convert")
