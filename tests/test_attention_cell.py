"""tf.contrib's AttentionCellWrapper (Magenta's attention RNN): the TF1 reproduction against numpy
written from TF 1.15's `call` and `_attention`, and the cell converted from a checkpoint and its
`.meta` (attn_length read from the graph, the wrapped cell's forget_bias 0.5 and attn_vec_size
off their defaults), checked against that graph; planted misreads (the attention window one step
short, the wrapped cell's forget_bias missed) are refused by that check; without the `.meta`,
attn_length is never assumed."""
import json

import keras
import numpy as np
import pytest
from absl import flags

import numpy_lstm
import zoo_harness
from legacy_rnn import zoo
from legacy_rnn.cli import entry
from legacy_rnn.conversion import blockwise, convert, inspection
from legacy_rnn.errors import UserError

C = zoo.CellSpec.make
ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
LSTM = C("basic_lstm", 4, forget_bias=0.5)
SPEC = C("attention_cell_wrapper", 3, cell=LSTM, attn_length=3, attn_vec_size=5)
FAMILY = zoo.FAMILIES["attention_cell_wrapper"]


def test_the_tf1_wrapper_computes_contribs_equations():
    x, _ = zoo_harness.inputs(2)
    run = zoo_harness.tf1_run(zoo.Block([SPEC]), x)
    prefix = "rnn/attention_cell_wrapper/"
    weights = {name[len(prefix):]: v for name, v in run.weights.items()}
    assert set(weights) == set(FAMILY.variables(SPEC, 3))
    expected = numpy_lstm.attention_lstm_outputs(x.astype(np.float64), weights,
                                                 zoo_harness.LENGTHS, 3, forget_bias=0.5)
    assert np.abs(run.outputs - expected).max() <= 1e-6  # float32 against float64


def test_it_converts_against_its_graph_and_refuses_planted_misreads(tmp_path, monkeypatch):
    # Magenta wraps the first level of its MultiRNNCell.
    block = zoo.Block([SPEC, C("basic_lstm", 4)], scope="enc")
    prefix, original = zoo_harness.save_block_graph(tmp_path, block)
    (b,) = inspection.describe(prefix)["blocks"]
    assert b["cells"][0]["cell"] == ("AttentionCellWrapper(BasicLSTMCell(4, forget_bias=0.5), "
                                     "attn_size=3, attn_length=3, attn_vec_size=5)")
    assert b["options"]["attn_length"]["source"].startswith("the .meta graph")
    blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry_ = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry_["verified_against"].startswith("the user's graph")
    assert entry_["largest_difference"] <= ATOL and entry_["status"] == "written"
    from legacy_rnn import keras_cells  # noqa: F401  (the registered twin)
    model = keras.saving.load_model(tmp_path / "out" / entry_["file"])
    x, _ = zoo_harness.inputs(9)
    lengths = zoo_harness.LENGTHS
    assert np.abs(np.asarray(model([x, lengths])) - original(x, lengths)).max() <= ATOL
    # Planted: the window one step short; then the wrapped cell's forget_bias missed.
    honest = FAMILY.options_in_graph
    for misread in ({"attn_length": 2}, {"forget_bias": 1.0}):
        monkeypatch.setattr(FAMILY, "options_in_graph",
                            lambda view, p, m=misread: {**honest(view, p), **m})
        results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / f"planted{len(misread)}"),
                                               overwrite=True)
        assert not results[0].ok and results[0].largest_difference > 10 * ATOL, misread


def test_without_the_meta_attn_length_is_asked_for_never_assumed(tmp_path, capsys):
    block = zoo.Block([SPEC])
    prefix, _ = zoo_harness.save_block_graph(tmp_path, block, meta=False)
    with pytest.raises(UserError, match="attn_length.*only the .meta graph shows it.*"
                                        "--attn_length=N"):
        blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    flag_values = flags.FlagValues()
    holders = convert.define_flags(flag_values)
    flag_values(["convert", f"--checkpoint={prefix}", f"--output={tmp_path / 'out'}",
                 "--attn_length=3", "--forget_bias=0.5"])
    assert entry.guarded("convert", lambda: convert.main(holders, ["convert"])) == 0
    report = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert report["options"]["attn_length"] == {"value": 3, "source": "--attn_length"}
    assert report["verified_against"].startswith("this project's TF1 rebuild")
    assert report["largest_difference"] <= ATOL
