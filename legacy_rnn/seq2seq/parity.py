"""One attention-decoder problem run through the TF1 graph (`tf1`) and its Keras twin
(`keras_decoder`): teacher-forced logits and their gradients, greedy and beam-search decoding.

The tests, `./run.sh backends` (the twin on JAX, from the saved case) and the docs' numbers use
these. The decoder reads a random memory with lengths (rows past a length are masked) and starts
from a random cell state, as a decoder fed an encoder's state does; `end_bias` is added to the
projection's end_token logit so that decoded rows stop at different steps.
"""
import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from legacy_rnn.seq2seq import keras_decoder
from legacy_rnn.seq2seq.decoder import AttentionSpec, DecoderSpec
from legacy_rnn.zoo.cells import CellSpec

v1 = tf.compat.v1
START, END = 1, 2
C = CellSpec.make

# One case per mechanism and option, each with other options off their defaults (the tests and
# `./run.sh backends` run them; BEAM_CASE is the one decoded on JAX).
CASES = {
    "Bahdanau normalize, LSTMCell(forget_bias=0.5), attention layer": DecoderSpec(
        C("lstm", 4, forget_bias=0.5), AttentionSpec("bahdanau", 5, normalize=True),
        7, attention_layer_size=6),
    "Bahdanau, LSTMCell, no attention layer": DecoderSpec(
        C("lstm", 4), AttentionSpec("bahdanau", 5), 7),
    "Luong scale, GRUCell, output_attention=False": DecoderSpec(
        C("gru", 4), AttentionSpec("luong", 4, scale=True), 7,
        attention_layer_size=4, output_attention=False),
    "Luong, BasicLSTMCell, nmt's output_projection": DecoderSpec(
        C("basic_lstm", 4), AttentionSpec("luong", 4), 7, attention_layer_size=5,
        output_layer="output_projection"),
    "Bahdanau, nmt's MultiRNNCell([LSTMCell(forget_bias=0.5), GRUCell]), attention layer":
        DecoderSpec(C("multi_rnn_cell", 4, cells=(C("lstm", 4, forget_bias=0.5), C("gru", 4))),
                    AttentionSpec("bahdanau", 5), 7, attention_layer_size=6),
}
BEAM_CASE = "Bahdanau normalize, LSTMCell(forget_bias=0.5), attention layer"  # decoded on JAX


@dataclasses.dataclass
class Problem:
    spec: object  # DecoderSpec
    batch: int = 3
    memory_time: int = 5
    memory_depth: int = 4
    embedding_size: int = 3
    target_time: int = 4
    beam_width: int = 3
    length_penalty_weight: float = 0.6
    maximum_iterations: int = 10
    end_bias: float = 0.4
    impute_finished: bool = False  # greedy decoding's
    seed: int = 0

    def arrays(self):
        """The inputs, drawn from `seed`: memory, its lengths (one row full, one of length 1),
        the initial cell state (Keras order), teacher-forcing inputs and lengths, and the fixed
        weights of the scalar whose gradients are compared."""
        rng = np.random.default_rng(self.seed)
        b, spec = self.batch, self.spec
        lengths = rng.integers(1, self.memory_time + 1, size=b).astype(np.int32)
        lengths[0], lengths[-1] = self.memory_time, 1
        target_lengths = rng.integers(1, self.target_time + 1, size=b).astype(np.int32)
        target_lengths[0] = self.target_time
        sizes = spec.cell.family.keras_cell(spec.cell).state_size
        sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
        f32 = np.float32
        return {"memory": rng.normal(size=(b, self.memory_time, self.memory_depth)).astype(f32),
                "memory_lengths": lengths,
                "states": [rng.normal(size=(b, n)).astype(f32) for n in sizes],
                "inputs": rng.normal(size=(b, self.target_time, self.embedding_size)).astype(f32),
                "lengths": target_lengths,
                "w": rng.normal(size=(b, self.target_time, spec.vocab)).astype(f32)}


def _graph(problem, arrays, mode, weights):
    """One TF1 graph (as nmt builds one per mode) with `weights` loaded (or its own initial
    values, drawn with a graph seed, when None); returns (weights, fetched results)."""
    spec = problem.spec
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(problem.seed + 1)
        memory = tf.constant(arrays["memory"])
        lengths = tf.constant(arrays["memory_lengths"])
        state = spec.cell.family.state_from_keras(spec.cell, [tf.constant(s) for s in
                                                              arrays["states"]])
        embedding = v1.get_variable("embedding", [spec.vocab, problem.embedding_size])
        batch = problem.batch
        common = dict(embedding=embedding, start_tokens=tf.fill([batch], START), end_token=END,
                      maximum_iterations=problem.maximum_iterations)
        if mode == "teacher":
            outputs, _, _ = spec.tf1_decode(memory, lengths, state,
                                            inputs=tf.constant(arrays["inputs"]),
                                            lengths=tf.constant(arrays["lengths"]))
            trainable = v1.trainable_variables()
            fetch = {"logits": outputs.rnn_output}
            fetch["gradients"] = dict(zip(
                [v.op.name for v in trainable],
                tf.gradients(tf.reduce_sum(outputs.rnn_output * arrays["w"]), trainable)))
            fetch["gradients"].pop("embedding")  # the teacher inputs are given, not looked up
        elif mode == "greedy":
            outputs, _, out_lengths = spec.tf1_decode(
                memory, lengths, state, impute_finished=problem.impute_finished, **common)
            fetch = {"ids": outputs.sample_id, "logits": outputs.rnn_output,
                     "lengths": out_lengths}
        else:
            outputs, final, _ = spec.tf1_decode(
                memory, lengths, state, beam_width=problem.beam_width,
                length_penalty_weight=problem.length_penalty_weight, **common)
            fetch = {"ids": outputs.predicted_ids,
                     "scores": outputs.beam_search_decoder_output.scores,
                     "lengths": final.lengths}
        variables = v1.global_variables()
        initialize = v1.global_variables_initializer()
    with v1.Session(graph=graph) as sess:
        sess.run(initialize)
        if weights is None:
            weights = {v.op.name: value for v, value in zip(variables, sess.run(variables))}
            out = f"{spec.scope}/{spec.output_layer}/bias"
            weights[out] = weights[out].copy()
            weights[out][END] += problem.end_bias
            for name in weights:  # a scale that is not its initial 1.0 (or sqrt(1/units))
                if name.endswith("attention_g"):
                    weights[name] = np.float32(1.7)
        sess.run([v.assign(weights[v.op.name]) for v in variables])
        return weights, sess.run(fetch)


def tf1_results(problem, modes=("teacher", "greedy", "beam")):
    """(weights {TF1 name: array}, {mode: results}) from the TF1 graphs."""
    arrays = problem.arrays()
    weights, results = None, {}
    for mode in modes:
        weights, results[mode] = _graph(problem, arrays, mode, weights)
    return weights, results


def keras_twin(problem, weights):
    """(decoder cell, projection, embedding) holding `weights`."""
    spec = problem.spec
    cell, projection = spec.keras_twin(problem.embedding_size, problem.memory_depth)
    spec.to_keras(cell, projection, weights)
    embedding = keras.layers.Embedding(spec.vocab, problem.embedding_size, name="embedding")
    embedding.build((None,))
    embedding.set_weights([weights["embedding"]])
    return cell, projection, embedding


def keras_gradients(problem, cell, projection, arrays):
    """Gradients of sum(logits * w) for the twin's variables, by TF1 name (TF backend)."""
    with tf.GradientTape() as tape:
        logits = keras_decoder.run(cell, projection, None, arrays, "teacher", problem_dict(
            problem))["logits"]
        loss = tf.reduce_sum(logits * arrays["w"])
    variables = cell.trainable_weights + projection.trainable_weights
    grads = tape.gradient(loss, variables)
    return problem.spec.to_tf1(cell, projection,
                               {v.path: g.numpy() for v, g in zip(variables, grads)},
                               gradients=True)


def problem_dict(problem):
    return {"beam_width": problem.beam_width,
            "length_penalty_weight": problem.length_penalty_weight,
            "maximum_iterations": problem.maximum_iterations, "start": START, "end": END,
            "impute_finished": problem.impute_finished}


def save_case(directory, name, problem):
    """A `seq2seq` case for `legacy_rnn.tools.backend_check`: the twin's layers (config and
    weights), the inputs and the TF1 graphs' results."""
    weights, results = tf1_results(problem)
    cell, projection, embedding = keras_twin(problem, weights)
    arrays = problem.arrays()
    stem = name.replace(" ", "_").replace(":", "")
    keras_decoder.save_layers(os.path.join(directory, stem + ".layers"),
                              {"cell": cell, "projection": projection, "embedding": embedding},
                              depths=[problem.embedding_size, problem.memory_depth])
    data = {f"in_{k}": v for k, v in arrays.items() if k != "states"}
    data.update({f"in_state{i}": s for i, s in enumerate(arrays["states"])})
    for mode, result in results.items():
        data.update({f"expected_{mode}_{k}": v for k, v in result.items() if k != "gradients"})
    np.savez(os.path.join(directory, stem + ".npz"), **data)
    return {"name": name, "kind": "seq2seq", "data": stem + ".npz", "layers": stem + ".layers",
            "problem": problem_dict(problem)}
