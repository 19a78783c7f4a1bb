"""tf.contrib's `EmbeddingWrapper` (TF 1.15, `contrib/rnn/python/ops/core_rnn_cell.py`) <-> the
registered Keras 3 layer `legacy_rnn.keras_cells.IdsEmbedding` before the block's recurrent
layers.

    EmbeddingWrapper(cell, embedding_classes, embedding_size): cell(embedding[ids_t], state)

It holds `embedding [classes, size]` under `embedding_wrapper/`, the wrapped cell's scope inside;
the block then reads ids, one per step (`dynamic_rnn` takes them as `[batch, time, 1]` int32;
the wrapper flattens each step's `[batch, 1]`). Outside `legacy_seq2seq` (whose
`embedding_attention_seq2seq` the seq2seq converter reads with its decoder), it is a block's
outermost input-side wrapper. The Keras block takes the ids as numbers in its `x` input (cast to
int32 by the layer, exact below 2**24).
"""
import math

import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.zoo import graphview, wrappers


class EmbeddingWrapper(wrappers.WrappingCell):
    """contrib's EmbeddingWrapper on today's TF, with its variable name and lookup."""

    def __init__(self, cell, embedding_classes, embedding_size, initializer=None, name=None,
                 **kwargs):
        super().__init__(cell, name=name, **kwargs)
        self._classes = embedding_classes
        self._size = embedding_size
        self._initializer = initializer

    def build(self, inputs_shape):
        # contrib: the given initializer, else the scope's, else uniform with variance 1.
        scope = tf.compat.v1.get_variable_scope().initializer
        root3 = math.sqrt(3)
        initializer = (self._initializer or scope
                       or tf.compat.v1.random_uniform_initializer(-root3, root3))
        # Of the state's dtype, as contrib's (the layer's own would be the ids').
        self._embedding = self.add_weight("embedding", shape=[self._classes, self._size],
                                          initializer=initializer, dtype=tf.float32)
        self.built = True

    def call(self, inputs, state):
        embedded = tf.nn.embedding_lookup(self._embedding, tf.reshape(inputs, [-1]))
        return self._cell(embedded, state)


@wrappers.register
class Embedding(wrappers.Wrapper):
    kind, tf1_name, scope, side = "embedding", "EmbeddingWrapper", "embedding_wrapper", "input"
    reads_ids = True
    has_activation = False

    def variables(self, spec, input_size, inner_size):
        return {"embedding": (spec.classes, spec.size)}

    def recognize(self, shapes):
        embedding = shapes.get("embedding")
        if set(shapes) != {"embedding"} or len(embedding) != 2:
            return None
        return wrappers.WrapperSpec(self.kind, embedding[1], classes=embedding[0])

    def input_size_from(self, shapes, prefix):
        return 1  # one id per step

    def steps_in_graph(self, view, prefix):
        """Each step's lookup of the embedding: the ids it reads (before the wrapper's
        flattening Reshape), and the lookup."""
        steps = []
        for key in sorted(graphview.first_use(view, f"{prefix}/embedding",
                                              {"GatherV2", "ResourceGather", "Gather"}),
                          key=view.position):
            ids = view.inputs[key][1]
            if view.op(ids[:2]) == "Reshape":
                ids = view.inputs[ids[:2]][0]
            steps.append((ids, key))
        return steps or None

    def tf1_wrap(self, spec, cell):
        return EmbeddingWrapper(cell, spec.classes, spec.size)

    def keras_layer(self, spec, name):
        return keras_cells.IdsEmbedding(spec.classes, spec.size, name=name)

    def to_keras(self, spec, tf1):
        return [tf1["embedding"]]

    def to_tf1(self, spec, weights):
        (embedding,) = weights
        return {"embedding": embedding}

    def from_keras_layer(self, layer, activation_name):
        if not isinstance(layer, keras_cells.IdsEmbedding):
            return None
        return wrappers.WrapperSpec(self.kind, layer.size, classes=layer.classes)
