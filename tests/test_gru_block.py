"""tf.contrib's GRUBlockCell (its own names, the gate kernel called `w_c`) and GRUBlockCellV2
(GRUCell's names): built as TF1 code built them (the fused op per step, weights moved off their
initial values), converted from the checkpoint and its `.meta`, and checked against that graph."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo_harness
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, inspection

C = zoo.CellSpec.make
ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
TIME, INPUT, BATCH = 5, 3, 4


@pytest.mark.parametrize("kind, driver, names", [
    ("gru_block", "static", {"w_c": [INPUT + 4, 8], "b_ru": [8], "w_ru": [INPUT + 4, 4],
                             "b_c": [4]}),
    ("gru_block_v2", "dynamic", {"gates/kernel": [INPUT + 4, 8], "gates/bias": [8],
                                 "candidate/kernel": [INPUT + 4, 4], "candidate/bias": [4]})])
def test_gru_block_cells_convert_against_their_graph(tmp_path, kind, driver, names):
    block = zoo.Block([C(kind, 4)], "bidirectional", driver, scope="enc/bidirectional_rnn")
    prefix, original = zoo_harness.save_block_graph(tmp_path, block, time=TIME)
    stored = dict(tf.train.list_variables(prefix))
    assert {k.rsplit("/gru_cell/", 1)[1]: v for k, v in stored.items()
            if k.startswith("enc/bidirectional_rnn/fw/")} == names
    (b,) = inspection.describe(prefix)["blocks"]
    assert b["cells"][0]["cell"] == f"{C(kind, 4).family.tf1_name}(4)"
    blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["verified_against"].startswith("the user's graph")
    assert entry["largest_difference"] <= ATOL and entry["status"] == "written"
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    rng = np.random.default_rng(5)
    x, lengths = rng.normal(size=(BATCH, TIME, INPUT)).astype(np.float32), np.array([5, 2, 0, 4])
    assert np.abs(np.asarray(model([x, lengths])) - original(x, lengths)).max() <= ATOL


def test_the_gradient_registered_for_the_op_matches_finite_differences():
    zoo_harness.assert_gradients_match_finite_differences(C("gru_block", 3))
