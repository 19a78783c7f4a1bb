"""Converts a tf.compat.v1 checkpoint of one of the three models to a Keras 3 `.keras` file.

    python -m legacy_rnn.convert --checkpoint=PREFIX --model=mnist_birnn --output=OUT.keras

PREFIX is a checkpoint prefix or a directory with a `checkpoint` file; this project's checkpoints
and the original tutorial scripts' (unnamed output `Variable`, `Variable_1`) are both accepted.
n_hidden and the input size are read from the variable shapes. The result loads anywhere with
`keras.saving.load_model(OUT)`: MNIST models take float32 `[batch, 28, 28]` in [0, 1] and return
logits `[batch, 10]`; the toy model takes `[x [batch, time, 1], seqlen [batch] int32]` and
returns logits `[batch, 2]`.
"""
import os
import sys

from absl import app, flags

from legacy_rnn import checkpoints, keras_models
from legacy_rnn.cli import quiet_tf1_notices
from legacy_rnn.errors import UserError

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or directory.")
_MODEL = flags.DEFINE_enum("model", None, list(checkpoints.MODEL_VARIABLES),
                           "Which model the checkpoint holds.")
_OUTPUT = flags.DEFINE_string("output", None, "The .keras file to write.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace --output if it exists.")
_FORGET_BIAS = flags.DEFINE_float("forget_bias", 1.0,
                                  "The cells' forget_bias (the tutorials used 1.0).")


def convert_checkpoint(checkpoint, model_name, output, overwrite=False, forget_bias=1.0):
    """Writes the Keras equivalent of the checkpoint to `output`; returns its ModelShape."""
    if not output.endswith(".keras"):
        raise UserError(f"--output={output} must end in .keras (the Keras 3 file format).")
    if os.path.exists(output) and not overwrite:
        raise UserError(f"{output} exists. Choose another --output, or pass --overwrite.")
    tf1_weights, shape = checkpoints.read_weights(checkpoint, model_name)
    model = keras_models.from_tf1(model_name, tf1_weights, forget_bias)
    directory, name = os.path.split(os.path.abspath(output))
    tmp = os.path.join(directory, f".{name}.partial.keras")
    try:
        model.save(tmp)
        os.replace(tmp, output)
    except OSError as e:
        raise UserError(f"Cannot write {output} ({e.strerror}). Choose a writable --output.") from None
    return shape


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        shape = convert_checkpoint(_CHECKPOINT.value, _MODEL.value, _OUTPUT.value,
                                   _OVERWRITE.value, _FORGET_BIAS.value)
    except UserError as e:
        print(f"convert: {e}", file=sys.stderr)
        return 1
    print(f"wrote {_OUTPUT.value}: {_MODEL.value}, n_hidden {shape.n_hidden}, "
          f"{shape.n_input} inputs per step, {shape.n_classes} classes")
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["checkpoint", "model", "output"])
    quiet_tf1_notices()
    app.run(main)
