"""SavedModels of the seq2seq_attention model that decode: the TF1 graphs' and the Keras twin's,
with one signature, so a client cannot tell the four apart.

    <export_dir>/tf1_greedy, tf1_beam      tf.compat.v1.saved_model.Builder, tag "serve"
    <export_dir>/keras_greedy, keras_beam  keras.export.ExportArchive (TF backend)

    signature "serving_default"
    inputs   source int32 [None, None] (token ids, 0-padded), source_lengths int32 [None]
    outputs  ids int32 [None, maximum_iterations]: the decoded tokens (the best beam), end_token
             (2) at and past each row's length; lengths int32 [None]: tokens decoded, end_token
             included (a row that never ends: maximum_iterations)

A client needs TensorFlow only:

    serve = tf.saved_model.load("export/tf1_beam").signatures["serving_default"]
    out = serve(source=tf.constant([[3, 4, 5]]), source_lengths=tf.constant([3]))

TF1's dynamic_decode stops when every row has ended, so its ids are padded to
maximum_iterations here; the twin runs every step (a traced function reads no value back) and
its extra steps are cut the same way: both give the same ids.
"""
import os

import numpy as np

from legacy_rnn import atomic, lazy
from legacy_rnn.training import serving

tf = lazy.module("tensorflow")
MODES = ("greedy", "beam")


def _contract(ids, lengths, width, end):
    """ids [B, <= width] -> [B, width], end past each row's length."""
    pad = width - tf.shape(ids)[1]
    ids = tf.pad(ids, [[0, 0], [0, pad]], constant_values=end)
    ids.set_shape([None, width])
    past = tf.range(width)[None, :] >= tf.cast(lengths, tf.int32)[:, None]
    return {"ids": tf.where(past, tf.fill(tf.shape(ids), end), ids),
            "lengths": tf.cast(lengths, tf.int32)}


def export_tf1(config, values, mode, export_dir, overwrite=False):
    from types import SimpleNamespace

    from legacy_rnn.seq2seq import experiment
    graph = experiment.build_graph(config, mode)
    with graph.graph.as_default():
        outputs = _contract(graph.fetches["ids"], graph.fetches["lengths"],
                            config.maximum_iterations, experiment.END)
    with tf.compat.v1.Session(graph=graph.graph) as sess:
        experiment.load(graph, sess, values)
        model = SimpleNamespace(serving_inputs={k: graph.feeds[k] for k in
                                                ("source", "source_lengths")},
                                serving_outputs=outputs)
        serving.export_tf1(sess, model, graph.saver, export_dir, overwrite)


def keras_decoding(twin, config, mode):
    """`serve(source, source_lengths)` -> {ids, lengths} of the twin decoding (`mode`: greedy or
    beam) every step, with the signature's contract: traceable (no value read back), the
    function the Keras SavedModels export."""
    from legacy_rnn.seq2seq import experiment, keras_decoder
    problem = {"start": experiment.START, "end": experiment.END,
               "maximum_iterations": config.maximum_iterations,
               "beam_width": config.beam_width,
               "length_penalty_weight": config.length_penalty_weight}

    def serve(source, source_lengths):
        encoded = twin.encoder([twin.source_embedding(source), source_lengths])
        arrays = {"memory": encoded["outputs"], "memory_lengths": source_lengths,
                  "states": list(encoded["fw_0"])}
        out = keras_decoder.run(twin.cell, twin.projection, twin.target_embedding, arrays, mode,
                                problem, stop_early=False)
        ids = out["ids"][:, :, 0] if mode == "beam" else out["ids"]
        lengths = out["lengths"][:, 0] if mode == "beam" else out["lengths"]
        return _contract(ids, lengths, config.maximum_iterations, experiment.END)
    return serve


def export_keras(config, values, mode, export_dir, overwrite=False):
    import keras

    from legacy_rnn.seq2seq import experiment
    twin = experiment.keras_twin(config, values)
    serve = keras_decoding(twin, config, mode)
    serving.check_export_dir(export_dir, overwrite)
    with atomic.directory(export_dir, "--export_dir", create=False) as target:
        archive = keras.export.ExportArchive()
        for layer in (twin.encoder, twin.source_embedding, twin.target_embedding, twin.cell,
                      twin.projection):
            archive.track(layer)
        archive.add_endpoint(serving.SIGNATURE, serve, input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="source"),
            tf.TensorSpec([None], tf.int32, name="source_lengths")])
        archive.write_out(target, verbose=False)


def export_all(config, values, export_dir, overwrite=False):
    """The four SavedModels under `export_dir`; returns their paths."""
    paths = {}
    for mode in MODES:
        for side, export in (("tf1", export_tf1), ("keras", export_keras)):
            path = os.path.join(export_dir, f"{side}_{mode}")
            export(config, values, mode, path, overwrite)
            paths[f"{side}_{mode}"] = path
    return paths


def call(path, source, source_lengths):
    """{ids, lengths} (numpy) from the SavedModel at `path`."""
    serve = tf.saved_model.load(path).signatures[serving.SIGNATURE]
    out = serve(source=tf.constant(source, tf.int32),
                source_lengths=tf.constant(source_lengths, tf.int32))
    return {k: np.asarray(v) for k, v in out.items()}
