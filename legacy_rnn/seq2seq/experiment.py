"""`python -m legacy_rnn.seq2seq_attention`: an attention seq2seq model learns to reverse digit
strings, built as contrib's users built theirs, then decoded greedily and with beam search.

Offline and generated: a source is 3-8 random digits (`--min_length`, `--max_length`), its
target the same digits reversed (a task attention makes easy: output step t reads source step
L - 1 - t). Tokens: 0 padding, 1 start, 2 end, digits from 3.

The TF1 model (graph mode, tf.compat.v1): source embedding -> bidirectional_dynamic_rnn of
LSTMCell (the zoo block `encoder`) -> memory; decoder: AttentionWrapper(LSTMCell, Bahdanau or
Luong) starting from the forward encoder's final state, teacher-forced with TrainingHelper over
`[start] + target`, `sequence_loss` against `target + [end]`, Adam. Evaluation builds a greedy and
a beam-search graph (nmt's way: one graph per mode, the trained variables loaded into each) and
reports exact-match accuracy (every token through end) and per-token accuracy.

The Keras 3 twin (`keras_twin`) holds the same weights: the zoo's Keras block for the encoder,
`keras_decoder` for the decoder. `--measure` times a training step of each, and decoding at batch
1 and 64 (one run, this machine).

Training runs in the project's training loop (`legacy_rnn.training.loop`), as every program's
does: `--model_dir` keeps checkpoints, TensorBoard summaries and metrics.json (with the greedy and
beam accuracies), a SIGINT/SIGTERM saves the step reached, and rerunning the command resumes
(batch k is drawn from its own stream of the seed, so a resumed run ends with the weights of an
uninterrupted one). `--export_dir` writes SavedModels that decode (`legacy_rnn.seq2seq.serving`).
The golden numbers (`python -m legacy_rnn.golden`, `tests/golden/seq2seq_attention.json`) are
`golden_run`'s: 20 steps of a tiny configuration, the teacher-forced logits, both decoders'
token accuracies.
"""
import dataclasses
import time

import numpy as np
from absl import flags

from legacy_rnn import lazy
from legacy_rnn.errors import UserError
from legacy_rnn.seq2seq.serving import MODES  # the decoders: greedy, beam

tf = lazy.module("tensorflow")
blocks = lazy.module("legacy_rnn.zoo.blocks")
tf1 = lazy.module("legacy_rnn.seq2seq.tf1")
keras_decoder = lazy.module("legacy_rnn.seq2seq.keras_decoder")

PAD, START, END, FIRST_DIGIT = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class Config:
    units: int = 64
    embedding_size: int = 16
    attention: str = "bahdanau"
    attention_units: int = 64
    normalize: bool = True  # Bahdanau's option
    scale: bool = False  # Luong's option
    attention_layer_size: int = 64
    digits: int = 10
    min_length: int = 3
    max_length: int = 8
    batch_size: int = 64
    steps: int = 1500
    learning_rate: float = 0.005
    beam_width: int = 4
    length_penalty_weight: float = 0.0
    eval_examples: int = 500
    seed: int = 0

    @property
    def vocab(self):
        return FIRST_DIGIT + self.digits

    @property
    def maximum_iterations(self):
        return self.max_length + 1

    def check(self):
        if not 1 <= self.min_length <= self.max_length:
            raise UserError(f"--min_length={self.min_length} and --max_length={self.max_length}: "
                            "lengths need 1 <= min_length <= max_length.")
        if self.attention == "luong" and self.attention_units != self.units:
            raise UserError(f"--attention=luong scores the decoder's output against the keys, "
                            f"so --attention_units ({self.attention_units}) must equal --units "
                            f"({self.units}).")
        return self


SMOKE = Config(units=16, embedding_size=8, attention_units=16, attention_layer_size=16,
               max_length=5, batch_size=16, steps=30, eval_examples=40, beam_width=3)


# --- Data --------------------------------------------------------------------------------------
# The training graph's placeholders, in the order a batch tuple feeds them.
INPUTS = ("source", "source_lengths", "decoder_inputs", "targets", "target_lengths")
TRAIN_STREAM, TEST_STREAM = 0, 1  # of the seed: np.random.default_rng([seed, stream, ...])


def make_data(config, n, rng):
    """{source [n, max_length], source_lengths, decoder_inputs and targets [n, max_length + 1],
    target_lengths}: targets are the reversed digits then end; decoder inputs start then the
    reversed digits."""
    width = config.max_length
    lengths = rng.integers(config.min_length, config.max_length + 1, size=n).astype(np.int32)
    digits = rng.integers(FIRST_DIGIT, config.vocab, size=(n, width)).astype(np.int32)
    source = np.where(np.arange(width)[None] < lengths[:, None], digits, PAD).astype(np.int32)
    reversed_ = np.zeros((n, width + 1), np.int32)
    decoder_inputs = np.zeros((n, width + 1), np.int32)
    for row, length in enumerate(lengths):
        reversed_[row, :length] = source[row, :length][::-1]
        reversed_[row, length] = END
        decoder_inputs[row, 0] = START
        decoder_inputs[row, 1:length + 1] = source[row, :length][::-1]
    return {"source": source, "source_lengths": lengths, "decoder_inputs": decoder_inputs,
            "targets": reversed_, "target_lengths": lengths + 1}


class Batches:
    """The training batches, as the training loop draws them (`next_batch`): batch k from its own
    stream of the seed, so a resumed run (which draws again, and skips, the batches its
    checkpoint has seen) and a run with more `--steps` train on the same first batches."""

    def __init__(self, config):
        self.config, self.drawn = config, 0

    def next_batch(self, n):
        rng = np.random.default_rng([self.config.seed, TRAIN_STREAM, self.drawn])
        self.drawn += 1
        data = make_data(self.config, n, rng)
        return tuple(data[k] for k in INPUTS)


def test_data(config):
    """The `eval_examples` test strings, from the seed's own test stream."""
    return make_data(config, config.eval_examples,
                     np.random.default_rng([config.seed, TEST_STREAM]))


def accuracy(ids, data):
    """(exact match, per-token accuracy) of decoded `ids` [n, T] against the targets (every
    token through end; a missing token is wrong)."""
    targets, lengths = data["targets"], data["target_lengths"]
    n, width = targets.shape
    padded = np.full((n, max(width, ids.shape[1])), -1, np.int64)
    padded[:, :ids.shape[1]] = ids
    within = np.arange(width)[None] < lengths[:, None]
    right = (padded[:, :width] == targets) & within
    return (float(np.mean(right.sum(1) == lengths)), float(right.sum() / within.sum()))


# --- The model -----------------------------------------------------------------------------------
def encoder(config):
    from legacy_rnn.zoo.cells import CellSpec
    return blocks.Block((CellSpec.make("lstm", config.units),), direction="bidirectional",
                        driver="dynamic", scope="encoder")


def decoder(config):
    from legacy_rnn.seq2seq.decoder import AttentionSpec, DecoderSpec
    from legacy_rnn.zoo.cells import CellSpec
    attention = AttentionSpec(config.attention, config.attention_units,
                              normalize=config.attention == "bahdanau" and config.normalize,
                              scale=config.attention == "luong" and config.scale)
    return DecoderSpec(CellSpec.make("lstm", config.units), attention, config.vocab,
                       attention_layer_size=config.attention_layer_size,
                       output_layer="output_projection")


@dataclasses.dataclass
class Graph:
    graph: object
    feeds: dict  # data key -> placeholder
    fetches: dict
    saver: object
    model: object = None  # the training graph's `graphs.Model` (what the training loop runs)


def build_graph(config, mode):
    """The TF1 graph of one mode: `train` (loss, train_op, logits), `greedy` or `beam` (ids)."""
    from legacy_rnn.experiments import graphs
    v1 = tf.compat.v1
    graph = graphs.new_graph(config.seed)
    with graph.as_default():
        feeds = {"source": v1.placeholder(tf.int32, [None, None], "source"),
                 "source_lengths": v1.placeholder(tf.int32, [None], "source_lengths")}
        source_embedding = v1.get_variable("source_embedding",
                                           [config.vocab, config.embedding_size])
        target_embedding = v1.get_variable("target_embedding",
                                           [config.vocab, config.embedding_size])
        memory, (fw_state, _) = blocks.tf1_block(
            encoder(config), tf.nn.embedding_lookup(source_embedding, feeds["source"]),
            feeds["source_lengths"])
        spec = decoder(config)
        batch = tf.shape(feeds["source"])[0]
        decode = dict(embedding=target_embedding, start_tokens=tf.fill([batch], START),
                      end_token=END, maximum_iterations=config.maximum_iterations)
        fetches, model = {}, None
        if mode == "train":
            feeds.update({k: v1.placeholder(tf.int32, [None, None] if k != "target_lengths"
                                            else [None], k)
                          for k in ("decoder_inputs", "targets", "target_lengths")})
            outputs, _, _ = spec.tf1_decode(
                memory, feeds["source_lengths"], fw_state,
                inputs=tf.nn.embedding_lookup(target_embedding, feeds["decoder_inputs"]),
                lengths=feeds["target_lengths"])
            logits = tf.identity(outputs.rnn_output, "logits")
            steps = tf.shape(logits)[1]
            targets = feeds["targets"][:, :steps]
            weights = tf.sequence_mask(feeds["target_lengths"], steps, tf.float32)
            loss = tf.identity(tf1.sequence_loss(logits, targets, weights), "loss")
            # Created after every weight: no initializer's graph-derived seed moves.
            global_step = v1.train.get_or_create_global_step()
            train_op = v1.train.AdamOptimizer(config.learning_rate).minimize(
                loss, global_step=global_step)
            # Teacher-forced exact match: every target token (through end) the argmax.
            right = tf.logical_or(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets),
                                  tf.equal(weights, 0.0))
            exact = tf.reduce_mean(tf.cast(tf.reduce_all(right, axis=1), tf.float32),
                                   name="teacher_forced_exact_match")
            fetches = {"loss": loss, "train_op": train_op, "logits": logits}
            model = graphs.Model(graph, tuple(feeds[k] for k in INPUTS), logits, loss, exact,
                                 train_op, global_step, serving_outputs={}, serving_inputs={})
        elif mode == "greedy":
            outputs, _, lengths = spec.tf1_decode(memory, feeds["source_lengths"], fw_state,
                                                  **decode)
            fetches = {"ids": tf.identity(outputs.sample_id, "ids"), "lengths": lengths}
        else:
            outputs, state, _ = spec.tf1_decode(
                memory, feeds["source_lengths"], fw_state, beam_width=config.beam_width,
                length_penalty_weight=config.length_penalty_weight, **decode)
            fetches = {"ids": tf.identity(outputs.predicted_ids[:, :, 0], "ids"),
                       "lengths": tf.cast(state.lengths[:, 0], tf.int32)}
        fetches["init"] = v1.global_variables_initializer()
        saver = v1.train.Saver(v1.trainable_variables())
    return Graph(graph, feeds, fetches, saver, model)


def feed(graph, data, rows=slice(None)):
    return {placeholder: data[key][rows] for key, placeholder in graph.feeds.items()}


def trainable_values(graph, sess):
    with graph.graph.as_default():
        variables = tf.compat.v1.trainable_variables()
    return {v.op.name: value for v, value in zip(variables, sess.run(variables))}


def load(graph, sess, values):
    with graph.graph.as_default():
        variables = tf.compat.v1.trainable_variables()
        sess.run(graph.fetches["init"])
        sess.run([v.assign(values[v.op.name]) for v in variables])


def decode_graph(config, mode, values, data, batch_size=256):
    """Decoded ids [n, T] (the best beam for `beam`) from the TF1 graph of `mode`."""
    graph = build_graph(config, mode)
    with tf.compat.v1.Session(graph=graph.graph) as sess:
        load(graph, sess, values)
        parts = [sess.run(graph.fetches["ids"], feed(graph, data, slice(i, i + batch_size)))
                 for i in range(0, len(data["source"]), batch_size)]
    width = max(p.shape[1] for p in parts)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=END)
                           for p in parts])


# Settings that do not alter the weights a training step produces: a run resumes under others.
EVALUATION_ONLY = ("steps", "eval_examples", "beam_width", "length_penalty_weight")


def train_config(config, **settings):
    """The training loop's settings for `config` (`settings`: model_dir, checkpoint_steps,
    display_step, ...): `steps` batches of `batch_size`."""
    from legacy_rnn.training.config import TrainConfig
    return TrainConfig(batch_size=config.batch_size,
                       training_iters=config.steps * config.batch_size + 1,
                       **{"display_step": max(1, config.steps // 10), **settings})


def train_model(config, train=None, probe_size=0):
    """Trains the TF1 graph in the project's training loop (`training.loop`: with
    `train.model_dir`, checkpoints, resume, metrics.json, the save on SIGINT/SIGTERM), then
    decodes the test strings greedily and with beam search in graphs holding the trained
    weights. Returns the loop's metrics (`test_loss`; `test_accuracy`: the teacher-forced exact
    match), `{greedy,beam}_{exact_match,token_accuracy}`, `step_losses` (of this process's
    steps), `first_loss` and `loss` (the mean of the last 50 of them) and `values` (the trained
    variables)."""
    from legacy_rnn.training import loop
    config.check()
    train = train or train_config(config)
    graph = build_graph(config, "train")
    test = test_data(config)

    def decoding(sess):
        values = trainable_values(graph, sess)
        metrics = {}
        for mode in MODES:
            metrics[f"{mode}_exact_match"], metrics[f"{mode}_token_accuracy"] = accuracy(
                decode_graph(config, mode, values, test), test)
        return metrics

    signature = {k: v for k, v in dataclasses.asdict(config).items()
                 if k not in EVALUATION_ONLY and k != "batch_size"}
    result = loop.train_and_evaluate(graph.model, train, Batches(config),
                                     tuple(test[k] for k in INPUTS), run_config=signature,
                                     probe_size=probe_size, final_weights=True,
                                     more_metrics=decoding)
    losses = result["step_losses"]
    return {**result, "values": result["final_weights"],
            "first_loss": losses[0] if losses else None,
            "loss": float(np.mean(losses[-50:])) if losses else None}


# The golden numbers (`python -m legacy_rnn.golden`): a tiny configuration, 20 steps of batch 8,
# at the experiment's learning rate (0.005). Not higher: Adam amplifies the rounding of the
# attention's near-zero gradients (attention_b, query_layer) into the final weights in proportion
# to the learning rate. Between TF 2.19 and 2.21 on one machine they moved 1.1e-6 at 0.005 (0.46 of
# the golden bound), and 3.8e-6 at 0.01 and 0.02 (beyond it, the losses 1 ulp apart): a CHANGED
# that was none. Greedy decoding still scores 0 after 20 steps (its argmax margins 0.17, far above
# rounding); beam search 0.22.
GOLDEN = Config(units=8, embedding_size=4, attention_units=8, attention_layer_size=8,
                max_length=4, batch_size=8, steps=20, eval_examples=16, beam_width=2,
                length_penalty_weight=0.5)
GOLDEN_METRICS = ("test_accuracy", "test_loss", "global_step", "greedy_token_accuracy",
                  "beam_token_accuracy")


def golden_run(learning_rate_scale=1.0, final_weights=False, probe_size=8):
    """The golden configuration's run: its `step_losses`, `probe_logits` (the teacher-forced
    logits of the first `probe_size` test strings, `[probe_size, steps * vocab]`) and
    GOLDEN_METRICS (`final_weights` too, if asked: the canary's)."""
    config = dataclasses.replace(GOLDEN, learning_rate=GOLDEN.learning_rate * learning_rate_scale)
    result = train_model(config, train_config(config, display_step=5), probe_size=probe_size)
    probe = np.asarray(result["probe_logits"])
    result["probe_logits"] = probe.reshape(len(probe), -1)
    if not final_weights:
        del result["final_weights"]
    return result


# --- The Keras 3 twin ----------------------------------------------------------------------------
@dataclasses.dataclass
class Twin:
    encoder: object  # keras_block model: [x, lengths] -> {outputs, fw_0, bw_0}
    source_embedding: object
    target_embedding: object
    cell: object
    projection: object


def keras_twin(config, values):
    import keras
    block = encoder(config)
    model = blocks.keras_block(block, config.embedding_size, name="encoder", return_state=True)
    blocks.to_keras(block, model, values)
    embeddings = []
    for name in ("source_embedding", "target_embedding"):
        layer = keras.layers.Embedding(config.vocab, config.embedding_size, name=name)
        layer.build((None,))
        layer.set_weights([values[name]])
        embeddings.append(layer)
    spec = decoder(config)
    cell, projection = spec.keras_twin(config.embedding_size, block.output_size)
    spec.to_keras(cell, projection, values)
    return Twin(model, *embeddings, cell, projection)


def twin_run(twin, config, data, mode, rows=slice(None)):
    """The twin's teacher-forced logits (`teacher`) or decoded ids (`greedy`, `beam`: the best
    beam) for the rows of `data`."""
    source, lengths = data["source"][rows], data["source_lengths"][rows]
    import keras
    encoded = twin.encoder([twin.source_embedding(source), keras.ops.convert_to_tensor(lengths)])
    arrays = {"memory": encoded["outputs"], "memory_lengths": lengths,
              "states": list(encoded["fw_0"])}
    problem = {"start": START, "end": END, "maximum_iterations": config.maximum_iterations,
               "beam_width": config.beam_width,
               "length_penalty_weight": config.length_penalty_weight}
    if mode == "teacher":
        arrays["inputs"] = twin.target_embedding(data["decoder_inputs"][rows])
        arrays["lengths"] = data["target_lengths"][rows]
        return keras_decoder.run(twin.cell, twin.projection, None, arrays, "teacher",
                                 problem)["logits"]
    out = keras_decoder.run(twin.cell, twin.projection, twin.target_embedding, arrays, mode,
                            problem)
    ids = np.asarray(out["ids"])
    return ids[:, :, 0] if mode == "beam" else ids


def twin_train_step(twin, config, traced=True):
    """The Keras twin's training step as the TF1 graph's: `sequence_loss` (the mean over the
    targets' tokens) of the teacher-forced logits, Adam(learning_rate, epsilon 1e-8) as TF1's
    AdamOptimizer (the embeddings' gradients dense). `step(*batch)` (the arrays of INPUTS) -> the loss before the update. The
    decoder runs every step of the batch's width: TF1's loop stops at the longest target, and
    the steps past it weigh nothing in the loss either way. `traced`: a `tf.function` (the TF
    backend), traced once per batch shape; else eager Python over the steps."""
    import keras
    variables = (twin.encoder.trainable_weights + twin.source_embedding.trainable_weights
                 + twin.target_embedding.trainable_weights + twin.cell.trainable_weights
                 + twin.projection.trainable_weights)
    optimizer = keras.optimizers.Adam(config.learning_rate, epsilon=1e-8)

    def step(source, source_lengths, decoder_inputs, targets, target_lengths):
        source_lengths = tf.convert_to_tensor(source_lengths)
        with tf.GradientTape() as tape:
            encoded = twin.encoder([twin.source_embedding(source), source_lengths])
            memory = keras_decoder.Memory(twin.cell.attention, encoded["outputs"],
                                          source_lengths)
            states = [*encoded["fw_0"], twin.cell.initial_attention(tf.shape(source)[0])]
            logits, _ = keras_decoder.teacher_forced(
                twin.cell, twin.projection, twin.target_embedding(decoder_inputs), None, memory,
                states)
            mask = tf.sequence_mask(target_lengths, tf.shape(logits)[1], tf.float32)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                targets, logits) * mask) / tf.reduce_sum(mask)
        # Dense: TF1's AdamOptimizer decays every row of an embedding's moments, Keras's Adam
        # on the TF backend only the looked-up rows of an IndexedSlices gradient (trap 17).
        gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
        optimizer.apply_gradients(zip(gradients, variables))
        return loss
    return tf.function(step) if traced else step


# --- Measurements (--measure) ------------------------------------------------------------------
def _median_seconds(fn, repeats=20, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(config, values, log=print):
    """Median seconds of one training step (TF1 graph vs the twin on the TF backend, Adam in
    both; the twin eager and traced, `twin_train_step`) and of decoding a batch of 1 and of 64
    (TF1 graph vs twin, eager and traced as its SavedModel is: every step), one run on this
    machine."""
    rng = np.random.default_rng(config.seed + 7)
    data = make_data(config, 64, rng)
    out = {}
    graph = build_graph(config, "train")
    with tf.compat.v1.Session(graph=graph.graph) as sess:
        load(graph, sess, values)
        step_feed = feed(graph, data, slice(0, config.batch_size))
        out["tf1_train_step"] = _median_seconds(
            lambda: sess.run(graph.fetches["train_op"], step_feed))
    train_batch = tuple(data[k][:config.batch_size] for k in INPUTS)
    eager, traced = (twin_train_step(keras_twin(config, values), config, traced=t)
                     for t in (False, True))
    out["twin_train_step"] = _median_seconds(lambda: eager(*train_batch))
    out["twin_train_step_traced"] = _median_seconds(lambda: traced(*train_batch))
    twin = keras_twin(config, values)
    for mode in MODES:
        graph = build_graph(config, mode)
        with tf.compat.v1.Session(graph=graph.graph) as sess:
            load(graph, sess, values)
            for batch in (1, 64):
                batch_feed = feed(graph, data, slice(0, batch))
                out[f"tf1_{mode}_batch{batch}"] = _median_seconds(
                    lambda: sess.run(graph.fetches["ids"], batch_feed), repeats=10)
        from legacy_rnn.seq2seq import serving
        traced = tf.function(serving.keras_decoding(twin, config, mode))
        for batch in (1, 64):
            out[f"twin_{mode}_batch{batch}"] = _median_seconds(
                lambda: twin_run(twin, config, data, mode, slice(0, batch)), repeats=5)
            rows = (tf.constant(data["source"][:batch]),
                    tf.constant(data["source_lengths"][:batch]))
            out[f"twin_{mode}_batch{batch}_traced"] = _median_seconds(
                lambda: traced(*rows), repeats=10)
    for name, seconds in out.items():
        log(f"{name}: {seconds * 1e3:.1f} ms")
    return out


# --- The program ---------------------------------------------------------------------------------
def define_flags(flag_values=flags.FLAGS):
    fields = {f.name: f for f in dataclasses.fields(Config)}
    holders = {}
    for name, field in fields.items():
        default = field.default
        help_text = f"Config.{name} (default {default})."
        if isinstance(default, bool):
            holders[name] = flags.DEFINE_boolean(name, default, help_text,
                                                 flag_values=flag_values)
        elif isinstance(default, int):
            holders[name] = flags.DEFINE_integer(name, default, help_text,
                                                 lower_bound=0 if name == "seed" else 1,
                                                 flag_values=flag_values)
        elif isinstance(default, float):
            holders[name] = flags.DEFINE_float(name, default, help_text, lower_bound=0.0,
                                               flag_values=flag_values)
        elif name == "attention":
            holders[name] = flags.DEFINE_enum(name, default, ["bahdanau", "luong"], help_text,
                                              flag_values=flag_values)
    holders["model_dir"] = flags.DEFINE_string(
        "model_dir", None, "If set: checkpoints, TensorBoard summaries and metrics.json (the "
        "decoders' accuracies included) go here, and rerunning the same command resumes from "
        "the latest checkpoint (a finished run is evaluated again).", flag_values=flag_values)
    holders["checkpoint_steps"] = flags.DEFINE_integer(
        "checkpoint_steps", 500, "With --model_dir: save a checkpoint every this many steps (and "
        "at the end, and on SIGINT/SIGTERM).", lower_bound=1, flag_values=flag_values)
    holders["display_step"] = flags.DEFINE_integer(
        "display_step", None, "Log progress (and write summaries) every this many steps "
        "(default: a tenth of --steps).", lower_bound=1, flag_values=flag_values)
    holders["export_dir"] = flags.DEFINE_string(
        "export_dir", None, "After training, write four SavedModels that decode here: "
        "tf1_greedy, tf1_beam, keras_greedy, keras_beam (legacy_rnn/seq2seq/serving.py).",
        flag_values=flag_values)
    holders["overwrite"] = flags.DEFINE_boolean(
        "overwrite", False, "Replace an existing --export_dir.", flag_values=flag_values)
    holders["measure"] = flags.DEFINE_boolean(
        "measure", False, "After training, time a training step and decoding (TF1 graph and "
        "Keras twin).", flag_values=flag_values)
    return holders


def config_from(holders):
    return Config(**{name: holders[name].value for name in
                     (f.name for f in dataclasses.fields(Config))}).check()


def main(holders, argv):
    from absl import app, logging

    from legacy_rnn.cli import programs
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = config_from(holders)
    settings = {k: holders[k].value for k in ("model_dir", "checkpoint_steps", "display_step")
                if holders[k].value is not None}
    train = train_config(config, **settings)
    export_dir, overwrite = holders["export_dir"].value, holders["overwrite"].value
    # Refused before TensorFlow loads and before the training they would come after: an export
    # directory in the way, a model_dir that cannot be written or that a live run holds. The
    # loop itself gets no export_dir: it would export the training graph, not the decoders.
    programs.preflight(dataclasses.replace(train, export_dir=export_dir, overwrite=overwrite))
    programs.start_tensorflow()
    metrics = train_model(config, train)
    logging.info("test_loss %.6f (teacher-forced) on %d strings, %d training steps in %.1f s",
                 metrics["test_loss"], metrics["test_examples"], metrics["global_step"],
                 metrics["train_seconds"])
    if holders["measure"].value:
        measure(config, metrics["values"])
    if export_dir:
        from legacy_rnn.seq2seq import serving
        for name, path in serving.export_all(config, metrics["values"], export_dir,
                                             overwrite).items():
            print(f"exported {name} to {path}")
    print(f"train_seconds: {metrics['train_seconds']:.1f}")
    for mode in MODES:
        print(f"{mode}_exact_match: {metrics[f'{mode}_exact_match']:.4f}  "
              f"{mode}_token_accuracy: {metrics[f'{mode}_token_accuracy']:.4f}")
    return 0
