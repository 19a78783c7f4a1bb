"""tf.contrib's fused-RNN adaptors (`zoo/fused_drivers.py`): a bidirectional pair built from a
forward fused cell and a `TimeReversedFusedRNN`, with lengths, translated whole against the
user's graph: each cell a forward block of its own (never taken for a bidirectional driver's
half), the reversals and the concatenation the graph's own ops. A planted misread (the pair
concatenated backward half first) is refused by the comparison with the graph."""
import numpy as np
import pytest

import user_graphs
from legacy_rnn import keras_graph
from legacy_rnn.conversion import whole
from legacy_rnn.facts import TOLERANCE
from user_graphs import EMBED, TIME

STRUCTURES = {
    "block": ["LSTMBlockFusedCell(5, forget_bias=0.0) called on the sequence under bw/",
              "LSTMBlockFusedCell(5, forget_bias=0.0) called on the sequence under fw/"],
    "adaptor_dynamic": ["dynamic_rnn(GRUCell(5)) under bw/rnn/",
                        "dynamic_rnn(GRUCell(5)) under fw/rnn/"],
    "adaptor_static": ["static_rnn(GRUCell(5)) under bw/rnn/", "static_rnn(GRUCell(5)) under fw/rnn/"],
}


@pytest.mark.parametrize("kind", sorted(STRUCTURES))
def test_a_time_reversed_fused_pair_translates_whole(kind, tmp_path, monkeypatch):
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_fused_pair(prefix, kind)
    result = whole.to_keras_model(prefix, ["logits:0"])
    print(kind, result.forward_difference, result.gradient_difference)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    assert sorted(b.block.describe() for b in result.blocks) == STRUCTURES[kind]
    assert all(b.verified_against.startswith("the user's graph") for b in result.blocks)
    rng = np.random.default_rng(17)
    feeds = {"x": rng.normal(size=(3, TIME, EMBED)).astype(np.float32),
             "lengths": np.array([TIME, 2, 4], np.int32)}
    (expected,) = user_graphs.run_graph(prefix, ["logits:0"], feeds)
    np.testing.assert_allclose(np.asarray(result.model(feeds)), expected, atol=TOLERANCE, rtol=0)
    # Planted: the pair concatenated backward half first.
    honest = keras_graph.OPS["ConcatV2"]
    monkeypatch.setitem(keras_graph.OPS, "ConcatV2", lambda inputs, attrs: honest(
        inputs[::-1], attrs))  # the axis is an attribute here
    planted = whole.to_keras_model(prefix, ["logits:0"])
    assert not planted.ok and planted.forward_difference > 100 * TOLERANCE
