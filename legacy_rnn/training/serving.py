"""SavedModels any TensorFlow process can call: the legacy TF1 graph's and its Keras 3 twin's,
with one signature, so a client cannot tell the two apart.

    signature "serving_default", tag "serve"
    inputs   named after the graph's placeholders (mnist: images float32 [None, 784];
             toy: x float32 [None, seq_max_len, 1], seqlen int32 [None]); the batch is open
    outputs  classifiers: logits float32 [None, classes], probabilities float32,
             classes int64 [None]; regressions: predictions float32 [None, outputs]

A client needs TensorFlow only:

    import tensorflow as tf
    serve = tf.saved_model.load("export/").signatures["serving_default"]
    print(serve(images=tf.zeros([1, 784]))["classes"])

Calling the signature (named inputs, fixed dtypes, open batch) rather than the restored model
object is what keeps a deployment off "Could not find matching function to call loaded from the
SavedModel": a restored Keras object only has the functions traced for the input structures
and shapes it was called with at save time (docs/migration.md, trap 16).
An export is written to a temporary directory beside the target and renamed into place.
"""
import os

from legacy_rnn import atomic, lazy
from legacy_rnn.errors import UserError

tf = lazy.module("tensorflow")  # loaded when used: the flags are checked first (lazy.py)

SIGNATURE = "serving_default"


def check_export_dir(export_dir, overwrite, keep=()):
    """Refuses an existing non-empty `export_dir` (before any work is done) unless `overwrite`,
    and, overwrite or not, an `export_dir` whose replacement would delete one of the `keep`
    paths ({flag: path}: a --model_dir's checkpoints, a file just written)."""
    for flag, path in dict(keep).items():
        if export_dir and path and os.path.commonpath(
                [os.path.abspath(export_dir), os.path.abspath(path)]) == os.path.abspath(
                    export_dir):
            raise UserError(
                f"--export_dir={export_dir} holds {flag}={path}: writing the SavedModel replaces "
                f"the whole directory, which would delete what {flag} holds. Choose an export "
                f"directory outside it (for example {os.path.join(path, 'export')} inside a "
                "--model_dir is fine).")
    if export_dir and os.path.exists(export_dir) and not overwrite and (
            not os.path.isdir(export_dir) or os.listdir(export_dir)):
        raise UserError(f"--export_dir={export_dir} exists and is not empty. Choose another "
                        "directory, or pass --overwrite to replace it.")


def export_tf1(sess, model, saver, export_dir, overwrite=False):
    """Writes the TF1 inference signature of `model` (a graphs.Model in `sess`) with the
    variables `saver` holds (`tf.compat.v1.saved_model.Builder`)."""
    signature = tf.compat.v1.saved_model.predict_signature_def(
        inputs=model.serving_inputs,
        outputs=model.serving_outputs)
    check_export_dir(export_dir, overwrite)
    with atomic.directory(export_dir, "--export_dir", create=False) as target:
        builder = tf.compat.v1.saved_model.Builder(target)
        builder.add_meta_graph_and_variables(
            sess, [tf.compat.v1.saved_model.tag_constants.SERVING],
            signature_def_map={SIGNATURE: signature}, saver=saver, strip_default_attrs=True)
        builder.save()


def export_keras(keras_model, specs, call, export_dir, overwrite=False, head="softmax"):
    """Writes the Keras 3 twin with the same signature: `specs` {input name: tf.TensorSpec},
    `call(model, **inputs)` -> logits, `head` as the graph's (`keras.export.ExportArchive`)."""
    import keras

    from legacy_rnn.experiments import graphs

    names = list(specs)

    def serve(*tensors):
        return graphs.serving_outputs(head, call(keras_model, **dict(zip(names, tensors))))

    check_export_dir(export_dir, overwrite)
    with atomic.directory(export_dir, "--export_dir", create=False) as target:
        archive = keras.export.ExportArchive()
        archive.track(keras_model)
        archive.add_endpoint(SIGNATURE, serve, input_signature=[specs[n] for n in names])
        archive.write_out(target, verbose=False)
