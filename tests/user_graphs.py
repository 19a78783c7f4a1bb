"""TF1 graphs in the shape of public programs, saved with their `.meta` as a user's program
would save them (`tests/test_whole_model.py`, `tests/test_backends.py`)."""
import tensorflow as tf

tf1 = tf.compat.v1
VOCAB, EMBED, UNITS, TIME, TAGS = 13, 4, 5, 6, 3


def save(graph, prefix):
    with tf1.Session(graph=graph) as sess:
        sess.run(tf1.global_variables_initializer())
        tf1.train.Saver().save(sess, prefix)


def build_lm(prefix, v1_loops=True):
    """The PTB tutorial's model in miniature: forget_bias 0.0 (the tutorial's), two layers."""
    if v1_loops:  # and ref variables (VariableV2, `/read`): the graph TF 1.x wrote
        tf1.disable_control_flow_v2()
        tf1.disable_resource_variables()
    try:
        graph = tf.Graph()
        with graph.as_default():
            tf1.set_random_seed(1)
            ids = tf1.placeholder(tf.int32, [None, TIME], name="input_ids")
            embedding = tf1.get_variable("embedding", [VOCAB, EMBED])
            x = tf.nn.embedding_lookup(embedding, ids)
            cells = [tf1.nn.rnn_cell.LSTMCell(UNITS, forget_bias=0.0) for _ in range(2)]
            out, _ = tf1.nn.dynamic_rnn(tf1.nn.rnn_cell.MultiRNNCell(cells), x,
                                        dtype=tf.float32)
            flat = tf.reshape(out, [-1, UNITS])
            w = tf1.get_variable("softmax_w", [UNITS, VOCAB])
            b = tf1.get_variable("softmax_b", [VOCAB])
            logits = tf1.nn.xw_plus_b(flat, w, b)
            tf.reshape(logits, [-1, TIME, VOCAB], name="logits")
            tf.nn.softmax(logits, name="probabilities")
            save(graph, prefix)
    finally:
        tf1.enable_control_flow_v2()
        tf1.enable_resource_variables()


def build_tagger(prefix):
    """An NER tagger's word level: ids and lengths, a BiLSTM over a dynamic time, concat, and a
    projection through a reshape whose shape is computed from the time dimension."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(2)
        ids = tf1.placeholder(tf.int32, [None, None], name="word_ids")
        lengths = tf1.placeholder(tf.int32, [None], name="sequence_lengths")
        embedding = tf1.get_variable("words/embedding", [VOCAB, EMBED])
        x = tf.nn.embedding_lookup(embedding, ids)
        fw = tf1.nn.rnn_cell.LSTMCell(UNITS, forget_bias=0.5)
        bw = tf1.nn.rnn_cell.LSTMCell(UNITS, forget_bias=0.5)
        (out_fw, out_bw), _ = tf1.nn.bidirectional_dynamic_rnn(
            fw, bw, x, sequence_length=lengths, dtype=tf.float32)
        out = tf.concat([out_fw, out_bw], axis=-1)
        steps = tf.shape(out)[1]
        flat = tf.reshape(out, [-1, 2 * UNITS])
        w = tf1.get_variable("proj/W", [2 * UNITS, TAGS])
        b = tf1.get_variable("proj/b", [TAGS])
        tf.reshape(tf.matmul(flat, w) + b, [-1, steps, TAGS], name="logits")
        save(graph, prefix)


def build_state_classifier(prefix, v1_loops=False):
    """Classifiers that read final states, as sentence classifiers and encoders do: the
    concatenated final h of a BiLSTM with lengths (forget_bias 0.25), `state[-1].h` and
    `state[0]` of a GRU+LSTM MultiRNNCell, and the c of a static_rnn's LSTM, into one
    projection."""
    if v1_loops:
        tf1.disable_control_flow_v2()
        tf1.disable_resource_variables()
    try:
        graph = tf.Graph()
        with graph.as_default():
            tf1.set_random_seed(6)
            ids = tf1.placeholder(tf.int32, [None, TIME], name="ids")
            lengths = tf1.placeholder(tf.int32, [None], name="lengths")
            x = tf.nn.embedding_lookup(tf1.get_variable("embedding", [VOCAB, EMBED]), ids)
            cell = tf1.nn.rnn_cell.LSTMCell
            _, (fw, bw) = tf1.nn.bidirectional_dynamic_rnn(
                cell(UNITS, forget_bias=0.25), cell(UNITS, forget_bias=0.25), x,
                sequence_length=lengths, dtype=tf.float32)
            stack = tf1.nn.rnn_cell.MultiRNNCell([tf1.nn.rnn_cell.GRUCell(3), cell(4)])
            _, states = tf1.nn.dynamic_rnn(stack, x, sequence_length=lengths, dtype=tf.float32,
                                           scope="stack")
            _, static = tf1.nn.static_rnn(cell(2), tf.unstack(x, axis=1), dtype=tf.float32,
                                          sequence_length=lengths, scope="static")
            features = tf.concat([fw.h, bw.h, states[-1].h, states[0], static.c], axis=1)
            w = tf1.get_variable("proj/W", [2 * UNITS + 4 + 3 + 2, TAGS])
            tf1.nn.xw_plus_b(features, w, tf1.get_variable("proj/b", [TAGS]), name="logits")
            save(graph, prefix)
    finally:
        tf1.enable_control_flow_v2()
        tf1.enable_resource_variables()


CHAR_BATCH = 3


def build_char_rnn(prefix, kind, fed_state=False):
    """char-rnn's model (sherjilozair/char-rnn-tensorflow, model.py) in miniature: a fixed
    batch, a 2-level MultiRNNCell from zero_state, softmax_w/b made under variable_scope
    "rnnlm" before legacy_seq2seq.rnn_decoder(..., scope="rnnlm") runs the steps (so its ops
    sit under rnnlm_1/rnnlm/), inputs by tf.split and squeeze, outputs concatenated and
    reshaped, probs. `kind`: "lstm" (BasicLSTMCell, forget_bias 0.5) or "nas" (NASCell,
    use_biases). `fed_state`: the top level's initial state a placeholder, as a sampler feeds
    the state it carries."""
    from legacy_rnn.zoo.nas import NASCell
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(8)
        make = {"lstm": lambda: tf1.nn.rnn_cell.BasicLSTMCell(UNITS, forget_bias=0.5),
                "nas": lambda: NASCell(UNITS, use_biases=True)}[kind]
        cell = tf1.nn.rnn_cell.MultiRNNCell([make() for _ in range(2)])
        ids = tf1.placeholder(tf.int32, [CHAR_BATCH, TIME], name="input_data")
        state = cell.zero_state(CHAR_BATCH, tf.float32)
        if fed_state:
            top = state[1]
            state = (state[0], type(top)(*[tf1.placeholder(tf.float32, s.shape, name=f"h{i}")
                                           for i, s in enumerate(top)]))
        with tf1.variable_scope("rnnlm"):
            softmax_w = tf1.get_variable("softmax_w", [UNITS, VOCAB])
            softmax_b = tf1.get_variable("softmax_b", [VOCAB])
        embedding = tf1.get_variable("embedding", [VOCAB, UNITS])
        inputs = tf.split(tf.nn.embedding_lookup(embedding, ids), TIME, 1)
        inputs = [tf.squeeze(x, [1]) for x in inputs]
        outputs = []
        with tf1.variable_scope("rnnlm"):  # legacy_seq2seq.rnn_decoder's loop
            for i, x in enumerate(inputs):
                if i > 0:
                    tf1.get_variable_scope().reuse_variables()
                output, state = cell(x, state)
                outputs.append(output)
        output = tf.reshape(tf.concat(outputs, 1), [-1, UNITS])
        logits = tf.add(tf.matmul(output, softmax_w), softmax_b, name="logits")
        tf.nn.softmax(logits, name="probs")
        save(graph, prefix)


def build_ptb(prefix, rnn_mode):
    """The PTB tutorial's PTBModel (tensorflow/models tutorials/rnn/ptb/ptb_word_lm.py) in
    miniature: under variable_scope "Model" with a uniform initializer, a fixed batch, a
    2-level MultiRNNCell of forget_bias 0.0 cells from zero_state (`rnn_mode` "basic":
    BasicLSTMCell; "block": contrib's LSTMBlockCell, forget_bias kept in the op's attribute),
    the tutorial's own time loop under variable_scope "RNN" over inputs[:, t, :], concat,
    reshape, xw_plus_b(softmax_w, softmax_b), logits reshaped to [batch, steps, vocab]."""
    from legacy_rnn.zoo.lstm_block import LSTMBlockCell
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(9)
        initializer = tf1.random_uniform_initializer(-0.5, 0.5)
        with tf1.variable_scope("Model", initializer=initializer):
            ids = tf1.placeholder(tf.int32, [CHAR_BATCH, TIME], name="input_data")
            embedding = tf1.get_variable("embedding", [VOCAB, UNITS])
            inputs = tf.nn.embedding_lookup(embedding, ids)
            make = {"basic": lambda: tf1.nn.rnn_cell.BasicLSTMCell(UNITS, forget_bias=0.0),
                    "block": lambda: LSTMBlockCell(UNITS, forget_bias=0.0)}[rnn_mode]
            cell = tf1.nn.rnn_cell.MultiRNNCell([make() for _ in range(2)])
            state = cell.zero_state(CHAR_BATCH, tf.float32)
            outputs = []
            with tf1.variable_scope("RNN"):
                for time_step in range(TIME):
                    if time_step > 0:
                        tf1.get_variable_scope().reuse_variables()
                    cell_output, state = cell(inputs[:, time_step, :], state)
                    outputs.append(cell_output)
            output = tf.reshape(tf.concat(outputs, 1), [-1, UNITS])
            softmax_w = tf1.get_variable("softmax_w", [UNITS, VOCAB])
            softmax_b = tf1.get_variable("softmax_b", [VOCAB])
            logits = tf1.nn.xw_plus_b(output, softmax_w, softmax_b)
            tf.reshape(logits, [CHAR_BATCH, TIME, VOCAB], name="logits")
        save(graph, prefix)


def build_ner_tagger(prefix):
    """guillaumegenthial/sequence_tagging's model (model/ner_model.py) in miniature: char ids
    [batch, words, chars] and word lengths [batch, words] reshaped to one row per word, a char
    BiLSTM (forget_bias 0.75) whose final h of each direction is concatenated and reshaped
    back to [batch, words, 2 * chars' units], concatenated with the word embeddings, a word
    BiLSTM with the sentence lengths under "bi-lstm", and the projection "proj" through a
    reshape computed from the time dimension (the CRF that follows in training reads these
    logits)."""
    chars, char_dim, char_units = 9, 3, 2
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(12)
        word_ids = tf1.placeholder(tf.int32, [None, None], name="word_ids")
        sequence_lengths = tf1.placeholder(tf.int32, [None], name="sequence_lengths")
        char_ids = tf1.placeholder(tf.int32, [None, None, None], name="char_ids")
        word_lengths = tf1.placeholder(tf.int32, [None, None], name="word_lengths")
        with tf1.variable_scope("words"):
            table = tf1.get_variable("_word_embeddings", [VOCAB, EMBED])
            word_embeddings = tf.nn.embedding_lookup(table, word_ids)
        with tf1.variable_scope("chars"):
            table = tf1.get_variable("_char_embeddings", [chars, char_dim])
            char_embeddings = tf.nn.embedding_lookup(table, char_ids)
            s = tf.shape(char_embeddings)
            char_embeddings = tf.reshape(char_embeddings, [s[0] * s[1], s[-2], char_dim])
            lengths = tf.reshape(word_lengths, [s[0] * s[1]])
            cell = tf1.nn.rnn_cell.LSTMCell
            _, ((_, fw), (_, bw)) = tf1.nn.bidirectional_dynamic_rnn(
                cell(char_units, forget_bias=0.75), cell(char_units, forget_bias=0.75),
                char_embeddings, sequence_length=lengths, dtype=tf.float32)
            output = tf.reshape(tf.concat([fw, bw], axis=-1), [s[0], s[1], 2 * char_units])
            word_embeddings = tf.concat([word_embeddings, output], axis=-1)
        with tf1.variable_scope("bi-lstm"):
            (fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(
                cell(UNITS), cell(UNITS), word_embeddings, sequence_length=sequence_lengths,
                dtype=tf.float32)
            output = tf.concat([fw, bw], axis=-1)
        with tf1.variable_scope("proj"):
            w = tf1.get_variable("W", [2 * UNITS, TAGS])
            b = tf1.get_variable("b", [TAGS], initializer=tf1.zeros_initializer())
            steps = tf.shape(output)[1]
            pred = tf.matmul(tf.reshape(output, [-1, 2 * UNITS]), w) + b
            tf.reshape(pred, [-1, steps, TAGS], name="logits")
        save(graph, prefix)


def build_deepspeech(prefix, cudnn_names):
    """Mozilla DeepSpeech's create_model (DeepSpeech.py, 0.6-0.9) in miniature, its CPU path
    (rnn_impl_lstmblockfusedcell): batch-major features made time-major and flattened, a dense
    layer clipped ReLU(20), reshaped to [time, batch, n], contrib's LSTMBlockFusedCell with
    forget_bias 0 and the lengths, two dense layers, `raw_logits` time-major. `cudnn_names`:
    DeepSpeech's own scope and name (cudnn_lstm/rnn/multi_rnn_cell/cell_0/
    cudnn_compatible_lstm_cell, a cuDNN-canonical checkpoint); else "lstm"/"lstm_cell"."""
    from legacy_rnn.zoo.lstm_block_fused import LSTMBlockFusedCell
    features, hidden, cell_units, classes = 4, 6, 5, 7

    def dense(name, x, units, relu=True):
        with tf1.variable_scope(name):
            bias = tf1.get_variable("bias", [units],
                                    initializer=tf1.random_normal_initializer(stddev=0.1))
            weights = tf1.get_variable("weights", [x.shape[-1], units])
            out = tf.nn.bias_add(tf.matmul(x, weights), bias)
            return tf.minimum(tf.nn.relu(out), 20.0) if relu else out

    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(14)
        batch_x = tf1.placeholder(tf.float32, [None, None, features], name="input_node")
        seq_length = tf1.placeholder(tf.int32, [None], name="input_lengths")
        batch_size = tf.shape(batch_x)[0]
        x = tf.reshape(tf.transpose(batch_x, [1, 0, 2]), [-1, features])
        layer_3 = tf.reshape(dense("layer_1", x, hidden), [-1, batch_size, hidden])
        scope, name = (("cudnn_lstm/rnn/multi_rnn_cell/cell_0", "cudnn_compatible_lstm_cell")
                       if cudnn_names else ("lstm", "lstm_cell"))
        with tf1.variable_scope(scope):
            cell = LSTMBlockFusedCell(cell_units, forget_bias=0, name=name)
            output, _ = cell(layer_3, dtype=tf.float32, sequence_length=seq_length)
        layer_5 = dense("layer_5", tf.reshape(output, [-1, cell_units]), hidden)
        layer_6 = dense("layer_6", layer_5, classes, relu=False)
        tf.reshape(layer_6, [-1, batch_size, classes], name="raw_logits")
        save(graph, prefix)


def build_time_series(prefix):
    """Hands-On Machine Learning's (1st edition, chapter 14) time-series RNN: a BasicRNNCell(relu)
    inside an OutputProjectionWrapper to one value per step, run by dynamic_rnn, with its MSE
    loss and Adam step."""
    from legacy_rnn.zoo.projection import OutputProjectionWrapper  # tf.contrib.rnn's, reproduced
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(16)
        x = tf1.placeholder(tf.float32, [None, TIME, 1], name="X")
        y = tf1.placeholder(tf.float32, [None, TIME, 1], name="y")
        cell = OutputProjectionWrapper(tf1.nn.rnn_cell.BasicRNNCell(UNITS, activation=tf.nn.relu),
                                       1)
        outputs, _ = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        outputs = tf.identity(outputs, name="outputs")
        loss = tf.reduce_mean(tf.square(outputs - y), name="loss")
        tf1.train.AdamOptimizer(1e-3).minimize(loss, name="training_op")
        save(graph, prefix)


def build_fused_pair(prefix, kind):
    """A bidirectional pair of fused cells as tf.contrib's users built one: a forward fused cell
    under `fw/`, a `TimeReversedFusedRNN` of another under `bw/`, on a time-major transpose of the
    input, their outputs concatenated and projected. `kind`: LSTMBlockFusedCell (forget_bias 0),
    or `FusedRNNCellAdaptor(GRUCell)` over dynamic_rnn or static_rnn (a list of steps)."""
    from legacy_rnn.zoo.fused_drivers import FusedRNNCellAdaptor, TimeReversedFusedRNN
    from legacy_rnn.zoo.lstm_block_fused import LSTMBlockFusedCell
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(17)
        x = tf1.placeholder(tf.float32, [None, TIME, EMBED], name="x")
        lengths = tf1.placeholder(tf.int32, [None], name="lengths")
        time_major = tf.transpose(x, [1, 0, 2])
        outputs = []
        for direction in ("fw", "bw"):
            with tf1.variable_scope(direction):
                if kind == "block":
                    cell, scope = LSTMBlockFusedCell(UNITS, forget_bias=0.0), {}
                else:
                    cell = FusedRNNCellAdaptor(tf1.nn.rnn_cell.GRUCell(UNITS),
                                               use_dynamic_rnn=kind == "adaptor_dynamic")
                    scope = {"scope": "rnn"}
                cell = TimeReversedFusedRNN(cell) if direction == "bw" else cell
                inputs = tf.unstack(time_major, TIME) if kind == "adaptor_static" else time_major
                out, _ = cell(inputs, dtype=tf.float32, sequence_length=lengths, **scope)
                outputs.append(tf.stack(out) if kind == "adaptor_static" else out)
        both = tf.transpose(tf.concat(outputs, 2), [1, 0, 2])
        w = tf1.get_variable("proj/w", [2 * UNITS, TAGS])
        tf.identity(tf.tensordot(both, w, 1), name="logits")
        save(graph, prefix)


def build_magenta_attention(prefix):
    """Magenta's attention RNN (events_rnn_graph's make_rnn_cell): an AttentionCellWrapper on the
    first level of a MultiRNNCell of BasicLSTMCells, each level in a DropoutWrapper, over one-hot
    events with lengths, projected to logits through a reshape the batch computes."""
    from legacy_rnn.zoo.attention_cell import AttentionCellWrapper  # tf.contrib's, reproduced
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(18)
        inputs = tf1.placeholder(tf.float32, [None, None, VOCAB], name="inputs")
        lengths = tf1.placeholder(tf.int32, [None], name="lengths")
        cells = []
        for k in range(2):
            cell = tf1.nn.rnn_cell.BasicLSTMCell(UNITS)
            cell = AttentionCellWrapper(cell, 4) if k == 0 else cell
            cells.append(tf1.nn.rnn_cell.DropoutWrapper(cell, output_keep_prob=1.0))
        outputs, _ = tf1.nn.dynamic_rnn(tf1.nn.rnn_cell.MultiRNNCell(cells), inputs,
                                        sequence_length=lengths, dtype=tf.float32)
        logits = tf1.layers.dense(tf.reshape(outputs, [-1, UNITS]), VOCAB)
        tf.reshape(logits, [tf.shape(inputs)[0], -1, VOCAB], name="logits")
        save(graph, prefix)


def run_graph(prefix, outputs, feeds, v1_loops=False):
    """The user's graph imported and run by hand."""
    if v1_loops:
        tf1.disable_control_flow_v2()
    try:
        graph = tf.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            tf1.train.import_meta_graph(prefix + ".meta").restore(sess, prefix)
            return sess.run(outputs, {k + ":0": v for k, v in feeds.items()})
    finally:
        tf1.enable_control_flow_v2()
