"""tf.contrib.legacy_seq2seq (the old translate tutorial) in graph mode on today's TensorFlow.

Written from TF 1.15's `contrib/legacy_seq2seq/python/ops/seq2seq.py` (contrib/rnn's
`EmbeddingWrapper` and `OutputProjectionWrapper` are the zoo's, `zoo/embedding.py` and
`zoo/projection.py`): `rnn_decoder`, `basic_rnn_seq2seq`, `tied_rnn_seq2seq`,
`embedding_rnn_decoder`, `embedding_rnn_seq2seq` (DeepQA's and the chatbot tutorials' model), `attention_decoder`, `embedding_attention_decoder` and
`embedding_attention_seq2seq`, statically unrolled over lists of per-step tensors, with TF 1.15's
variable names. `_linear` is TF's: `kernel` and `bias` (zeros)
created in the current scope over the concatenated arguments.

attention_decoder (scope `attention_decoder`), per head a (D = attention_states' depth):

    hidden_features = attention_states @ AttnW_a          (a 1x1 conv2d, AttnW_a [1, 1, D, D])
    x = [input, attns] @ kernel + bias                    (the input's own depth)
    cell_output, state = cell(x, state)
    y = concat(flatten(state)) @ Attention_a/kernel + bias  the query is the whole state, (c, h)
    a = softmax(sum(AttnV_a * tanh(hidden_features + y)))  no length mask: every source step
    attns = [sum(a * attention_states)]
    output = [cell_output, attns] @ AttnOutputProjection/kernel + bias

The initial attentions are zeros, or computed from the initial state with
`initial_state_attention=True`. With a `loop_function` (feed_previous), step i > 0 reads
embedding(argmax(previous output @ W + B)) instead of its input.
"""
import tensorflow as tf

from legacy_rnn.zoo.embedding import EmbeddingWrapper  # tf.contrib's, reproduced
from legacy_rnn.zoo.projection import OutputProjectionWrapper

v1 = tf.compat.v1


def _linear(args, output_size, bias=True):
    args = args if isinstance(args, (list, tuple)) else [args]
    total = sum(int(a.shape[-1]) for a in args)
    kernel = v1.get_variable("kernel", [total, output_size], dtype=args[0].dtype)
    x = args[0] if len(args) == 1 else tf.concat(args, 1)
    out = tf.matmul(x, kernel)
    if bias:
        out = tf.nn.bias_add(out, v1.get_variable("bias", [output_size], dtype=args[0].dtype,
                                                  initializer=v1.constant_initializer(0.0)))
    return out


def extract_argmax_and_embed(embedding, output_projection=None):
    def loop_function(prev, _):
        if output_projection is not None:
            prev = tf.compat.v1.nn.xw_plus_b(prev, output_projection[0], output_projection[1])
        return tf.nn.embedding_lookup(embedding, tf.argmax(prev, 1))
    return loop_function


def rnn_decoder(decoder_inputs, initial_state, cell, loop_function=None, scope=None):
    with v1.variable_scope(scope or "rnn_decoder"):
        state, outputs, prev = initial_state, [], None
        for i, inp in enumerate(decoder_inputs):
            if loop_function is not None and prev is not None:
                with v1.variable_scope("loop_function", reuse=True):
                    inp = loop_function(prev, i)
            if i > 0:
                v1.get_variable_scope().reuse_variables()
            output, state = cell(inp, state)
            outputs.append(output)
            if loop_function is not None:
                prev = output
    return outputs, state


def basic_rnn_seq2seq(encoder_inputs, decoder_inputs, cell, scope=None, encoder_cell=None):
    """static_rnn(encoder cell) over the encoder's inputs -> rnn_decoder from its final state
    (scope `basic_rnn_seq2seq`: `rnn/<cell>` and `rnn_decoder/<cell>`, two cells).
    `encoder_cell`: as in `embedding_attention_seq2seq`."""
    with v1.variable_scope(scope or "basic_rnn_seq2seq"):
        _, state = v1.nn.static_rnn(encoder_cell, encoder_inputs, dtype=tf.float32)
        return rnn_decoder(decoder_inputs, state, cell)


def tied_rnn_seq2seq(encoder_inputs, decoder_inputs, cell, loop_function=None, scope=None):
    """One cell for both: static_rnn over the encoder's inputs, then rnn_decoder from its final
    state over the same variables (`combined_tied_rnn_seq2seq/tied_rnn_seq2seq/<cell>`)."""
    with v1.variable_scope("combined_tied_rnn_seq2seq"):
        scope = scope or "tied_rnn_seq2seq"
        _, state = v1.nn.static_rnn(cell, encoder_inputs, dtype=tf.float32, scope=scope)
        v1.get_variable_scope().reuse_variables()
        return rnn_decoder(decoder_inputs, state, cell, loop_function=loop_function, scope=scope)


def embedding_rnn_decoder(decoder_inputs, initial_state, cell, num_symbols, embedding_size,
                          output_projection=None, feed_previous=False, scope=None):
    """rnn_decoder over `embedding` lookups of the decoder's ids (scope `embedding_rnn_decoder`:
    `embedding`, then `rnn_decoder/<cell>`); `feed_previous`: step i > 0 reads the embedding of
    the previous output's argmax (after `output_projection` (W, B), if given)."""
    with v1.variable_scope(scope or "embedding_rnn_decoder"):
        embedding = v1.get_variable("embedding", [num_symbols, embedding_size])
        loop_function = (extract_argmax_and_embed(embedding, output_projection)
                         if feed_previous else None)
        embedded = [tf.nn.embedding_lookup(embedding, i) for i in decoder_inputs]
        return rnn_decoder(embedded, initial_state, cell, loop_function=loop_function)


def embedding_rnn_seq2seq(encoder_inputs, decoder_inputs, cell, num_encoder_symbols,
                          num_decoder_symbols, embedding_size, output_projection=None,
                          feed_previous=False, scope=None, encoder_cell=None):
    """static_rnn(EmbeddingWrapper(encoder cell)) -> its final state -> embedding_rnn_decoder,
    the decoder cell inside an OutputProjectionWrapper(num_decoder_symbols) unless
    `output_projection` is given (scope `embedding_rnn_seq2seq`). `encoder_cell`: as in
    `embedding_attention_seq2seq`."""
    with v1.variable_scope(scope or "embedding_rnn_seq2seq"):
        encoder = EmbeddingWrapper(encoder_cell, num_encoder_symbols, embedding_size)
        _, encoder_state = v1.nn.static_rnn(encoder, encoder_inputs, dtype=tf.float32)
        if output_projection is None:
            cell = OutputProjectionWrapper(cell, num_decoder_symbols)
        return embedding_rnn_decoder(decoder_inputs, encoder_state, cell, num_decoder_symbols,
                                     embedding_size, output_projection=output_projection,
                                     feed_previous=feed_previous)


def attention_decoder(decoder_inputs, initial_state, attention_states, cell, output_size=None,
                      num_heads=1, loop_function=None, scope=None,
                      initial_state_attention=False):
    if output_size is None:
        output_size = cell.output_size
    with v1.variable_scope(scope or "attention_decoder"):
        batch = tf.shape(decoder_inputs[0])[0]
        length = attention_states.shape[1] or tf.shape(attention_states)[1]
        depth = int(attention_states.shape[2])
        hidden = tf.reshape(attention_states, [-1, length, 1, depth])
        features, v = [], []
        for a in range(num_heads):
            k = v1.get_variable(f"AttnW_{a}", [1, 1, depth, depth])
            features.append(tf.nn.conv2d(hidden, k, [1, 1, 1, 1], "SAME"))
            v.append(v1.get_variable(f"AttnV_{a}", [depth]))

        def attention(query):
            query = tf.concat(tf.nest.flatten(query), 1)
            reads = []
            for a in range(num_heads):
                with v1.variable_scope(f"Attention_{a}"):
                    y = tf.reshape(_linear(query, depth), [-1, 1, 1, depth])
                    s = tf.reduce_sum(v[a] * tf.tanh(features[a] + y), [2, 3])
                    weights = tf.nn.softmax(s)
                    d = tf.reduce_sum(tf.reshape(weights, [-1, length, 1, 1]) * hidden, [1, 2])
                    reads.append(tf.reshape(d, [-1, depth]))
            return reads

        state, outputs, prev = initial_state, [], None
        attns = [tf.zeros(tf.stack([batch, depth])) for _ in range(num_heads)]
        for a in attns:
            a.set_shape([None, depth])
        if initial_state_attention:
            attns = attention(initial_state)
        for i, inp in enumerate(decoder_inputs):
            if i > 0:
                v1.get_variable_scope().reuse_variables()
            if loop_function is not None and prev is not None:
                with v1.variable_scope("loop_function", reuse=True):
                    inp = loop_function(prev, i)
            x = _linear([inp] + attns, int(inp.shape[1]))
            cell_output, state = cell(x, state)
            if i == 0 and initial_state_attention:
                with v1.variable_scope(v1.get_variable_scope(), reuse=True):
                    attns = attention(state)
            else:
                attns = attention(state)
            with v1.variable_scope("AttnOutputProjection"):
                output = _linear([cell_output] + attns, output_size)
            if loop_function is not None:
                prev = output
            outputs.append(output)
    return outputs, state


def embedding_attention_decoder(decoder_inputs, initial_state, attention_states, cell,
                                num_symbols, embedding_size, num_heads=1, output_size=None,
                                output_projection=None, feed_previous=False, scope=None,
                                initial_state_attention=False):
    with v1.variable_scope(scope or "embedding_attention_decoder"):
        embedding = v1.get_variable("embedding", [num_symbols, embedding_size])
        loop_function = (extract_argmax_and_embed(embedding, output_projection)
                         if feed_previous else None)
        embedded = [tf.nn.embedding_lookup(embedding, i) for i in decoder_inputs]
        return attention_decoder(embedded, initial_state, attention_states, cell,
                                 output_size=output_size, num_heads=num_heads,
                                 loop_function=loop_function,
                                 initial_state_attention=initial_state_attention)


def embedding_attention_seq2seq(encoder_inputs, decoder_inputs, cell, num_encoder_symbols,
                                num_decoder_symbols, embedding_size, num_heads=1,
                                output_projection=None, feed_previous=False, scope=None,
                                initial_state_attention=False, encoder_cell=None):
    """The translate tutorial's model: static_rnn(EmbeddingWrapper(encoder cell)) -> its outputs
    as the attention states -> embedding_attention_decoder from the encoder's final state; the
    decoder cell inside an OutputProjectionWrapper(num_decoder_symbols) unless
    `output_projection` (W, B) is given. `encoder_cell`: contrib deep-copies `cell`; give a
    second cell of the same kind here (a deep copy of a tf-keras cell is not supported)."""
    with v1.variable_scope(scope or "embedding_attention_seq2seq"):
        encoder = EmbeddingWrapper(encoder_cell, num_encoder_symbols, embedding_size)
        encoder_outputs, encoder_state = v1.nn.static_rnn(encoder, encoder_inputs,
                                                          dtype=tf.float32)
        size = encoder.output_size
        attention_states = tf.concat([tf.reshape(e, [-1, 1, size]) for e in encoder_outputs],
                                     1)
        output_size = None
        if output_projection is None:
            cell = OutputProjectionWrapper(cell, num_decoder_symbols)
            output_size = num_decoder_symbols
        return embedding_attention_decoder(
            decoder_inputs, encoder_state, attention_states, cell, num_decoder_symbols,
            embedding_size, num_heads=num_heads, output_size=output_size,
            output_projection=output_projection, feed_previous=feed_previous,
            initial_state_attention=initial_state_attention)
