"""tf.contrib's LSTMBlockCell: LSTMCell's variables, its options only in the ops of the `.meta`.

The graphs are built the way TF1 code built them (the fused op per step, contrib's names, options
off their defaults: forget_bias 0.0 as in the PTB tutorial, cell_clip, peepholes), with weights
moved off their initial values; each conversion is checked against that graph, independently of
the converter's own check.
"""
import json

import keras
import numpy as np
import pytest

import zoo_harness
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, inspection

C = zoo.CellSpec.make
ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
TIME, INPUT, BATCH = 5, 3, 4


def case(seed=5):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(BATCH, TIME, INPUT)).astype(np.float32),
            np.array([TIME, 2, 0, 4], np.int32))


BLOCK_CELL = C("lstm_block", 4, forget_bias=0.0, cell_clip=3.0, use_peephole=True)


@pytest.mark.parametrize("driver", ["dynamic", "static"])
def test_an_lstm_block_cell_is_recognised_by_its_ops_and_its_options_read_from_them(
        tmp_path, driver):
    block = zoo.Block([BLOCK_CELL], "forward", driver, scope="lm/rnn")
    prefix, original = zoo_harness.save_block_graph(tmp_path, block, time=TIME)
    report = inspection.describe(prefix)
    (b,) = report["blocks"]
    assert b["cells"][0]["cell"] == "LSTMBlockCell(4, cell_clip=3.0, forget_bias=0.0, " \
                                    "use_peephole=True)"
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["options"]["forget_bias"]["value"] == 0.0
    assert entry["options"]["cell_clip"]["value"] == 3.0
    assert all("the .meta graph" in o["source"] for o in entry["options"].values())
    assert entry["verified_against"].startswith("the user's graph")
    assert entry["largest_difference"] <= ATOL and entry["status"] == "written"
    assert entry["load_with"] == "legacy_rnn.keras_cells"
    import legacy_rnn.keras_cells  # noqa: F401  (the twin's registered cell)
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    x, lengths = case()
    difference = np.abs(np.asarray(model([x, lengths])) - original(x, lengths)).max()
    assert difference <= ATOL
    print(f"LSTMBlockCell {driver}: {difference:.1e} (converter: {entry['largest_difference']:.1e})")


def test_without_the_meta_an_lstm_block_cell_converts_as_an_lstm_cell_with_its_options_assumed(
        tmp_path):
    # The variables alone cannot tell LSTMBlockCell from LSTMCell: the conversion says what it
    # assumed, and the assumption (forget_bias 1.0) is indeed wrong for this graph.
    block = zoo.Block([C("lstm_block", 4, forget_bias=0.0)], "forward", "dynamic")
    prefix, original = zoo_harness.save_block_graph(tmp_path, block, meta=False, time=TIME)
    blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["verified_against"].startswith("this project's TF1 rebuild")
    assert "forget_bias" in entry["assumed"]
    assert entry["options"]["forget_bias"] == {"value": 1.0, "source": "TF1's default"}
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    x, lengths = case()
    assert np.abs(np.asarray(model([x, lengths])) - original(x, lengths)).max() > 1e-2


def test_the_gradient_registered_for_the_op_matches_finite_differences():
    # TF 2.x has the op and its gradient kernel but registers no gradient; the one registered by
    # the zoo (as contrib did) is checked numerically, with a clip that does not bind.
    zoo_harness.assert_gradients_match_finite_differences(
        C("lstm_block", 3, forget_bias=0.5, use_peephole=True))
