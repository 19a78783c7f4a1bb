"""tf.contrib's InputProjectionWrapper and OutputProjectionWrapper: the TF1 reproduction against
numpy projections of the wrapped block's own outputs, the Keras twin (Dense layers around the
recurrent layers) against the TF1 graph (outputs, final states, gradients), and the wrappers
converted from a checkpoint and its `.meta` with their activations read from the graph; a planted
misread (the activation missed) is refused by the check against that graph."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo_harness
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, discover, inspection
from legacy_rnn.errors import UserError

C, W = zoo.CellSpec.make, zoo.WrapperSpec
ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
STACK = [C("basic_lstm", 4, forget_bias=0.5), C("gru", 3)]
WRAPPED = [W("output_projection", 5, "tanh"), W("input_projection", 6, "relu")]


def test_the_tf1_wrappers_project_the_wrapped_blocks_inputs_and_outputs():
    """act(x @ K_in + b_in) into the stack, act(stack @ K_out + b_out) out of it, zeros past each
    length: numpy over the unwrapped block run on the projected inputs."""
    block = zoo.Block(STACK, wrappers=WRAPPED)
    x, _ = zoo_harness.inputs(4)
    run = zoo_harness.tf1_run(block, x)
    w = run.weights
    out_k, out_b = w["rnn/output_projection_wrapper/kernel"], w["rnn/output_projection_wrapper/bias"]
    in_k = w["rnn/output_projection_wrapper/input_projection_wrapper/kernel"]
    in_b = w["rnn/output_projection_wrapper/input_projection_wrapper/bias"]
    inner = zoo.Block(STACK)
    inner_weights = {name.replace("output_projection_wrapper/input_projection_wrapper/", ""): v
                     for name, v in w.items() if "/multi_rnn_cell/" in name}
    projected = np.maximum(x @ in_k + in_b, 0.0)
    stack = zoo_harness.keras_run(inner, inner_weights, projected).outputs
    expected = np.tanh(stack @ out_k + out_b)
    expected[np.arange(x.shape[1])[None, :] >= zoo_harness.LENGTHS[:, None]] = 0.0
    assert np.abs(run.outputs - expected).max() <= 1e-6  # two float32 evaluations


@pytest.mark.parametrize("direction, driver, wrapped", [
    ("forward", "dynamic", WRAPPED),
    ("bidirectional", "static", [W("output_projection", 2, "sigmoid")]),
    ("bidirectional", "dynamic", [W("input_projection", 2)]),
])
def test_the_twin_matches_the_tf1_graph(direction, driver, wrapped):
    block = zoo.Block(STACK, direction, driver, wrappers=wrapped)
    x, _ = zoo_harness.inputs(1)
    reference = zoo_harness.tf1_run(block, x)
    twin = zoo_harness.keras_run(block, reference.weights, x)
    forward, state, gradients = zoo_harness.assert_parity(reference, twin)
    print(f"{block.describe()}: forward {forward:.1e}, state {state:.1e}, gradients "
          f"{gradients:.1e}")
    assert forward <= 1e-6 and gradients <= 1e-5
    assert any("projection_wrapper/kernel" in name for name in twin.gradients)


def test_wrappers_are_found_converted_and_checked_against_the_users_graph(tmp_path, monkeypatch):
    block = zoo.Block([C("basic_lstm", 4, forget_bias=0.5)], "bidirectional", scope="enc",
                      wrappers=WRAPPED)
    prefix, original = zoo_harness.save_block_graph(tmp_path, block)
    (b,) = inspection.describe(prefix)["blocks"]
    assert b["structure"].startswith(
        "bidirectional_dynamic_rnn(fw=OutputProjectionWrapper(InputProjectionWrapper("
        "BasicLSTMCell(4, forget_bias=0.5), 6, activation=relu), 5, activation=tanh)")
    assert b["options"]["OutputProjectionWrapper activation"]["value"] == "tanh"
    assert b["options"]["InputProjectionWrapper activation"]["source"].startswith("the .meta")
    blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["verified_against"].startswith("the user's graph")
    assert entry["largest_difference"] <= ATOL and entry["status"] == "written"
    assert not entry["assumed"]
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    x, _ = zoo_harness.inputs(7)
    lengths = zoo_harness.LENGTHS
    assert np.abs(np.asarray(model([x, lengths])) - original(x, lengths)).max() <= ATOL
    # Back to TF1: the same names and values.
    blockwise.to_tf1_checkpoint(str(tmp_path / "out" / entry["file"]), str(tmp_path / "back"),
                                scope="enc", basic=True)
    back = tf.train.load_checkpoint(str(tmp_path / "back"))
    saved = tf.train.load_checkpoint(prefix)
    assert set(back.get_variable_to_shape_map()) == set(block.variables(3))
    for name in block.variables(3):
        expected = saved.get_tensor(name)
        if name.endswith("lstm_cell/bias"):  # written for BasicLSTMCell's default forget_bias
            expected[8:12] -= 1.0 - 0.5  # 1.0, the f slice carrying the 0.5 it was trained with
        np.testing.assert_allclose(back.get_tensor(name), expected, atol=1e-6, err_msg=name)
    # Planted: the output projection's tanh missed in the graph; its check refuses the result.
    wrapper = zoo.WRAPPERS["output_projection"]
    monkeypatch.setattr(wrapper, "options_in_graph", lambda view, prefix: {})
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "planted"))
    entry = json.loads((tmp_path / "planted" / "blocks.json").read_text())["blocks"][0]
    assert entry["options"]["OutputProjectionWrapper activation"]["value"] == "linear"
    assert not results[0].ok and entry["largest_difference"] > 10 * ATOL
    assert entry["status"] == "failed: not written"


def test_without_a_graph_the_activation_is_named_as_assumed(tmp_path):
    block = zoo.Block([C("basic_rnn", 3, activation="relu")], driver="static",
                      wrappers=[W("output_projection", 2)])
    prefix, _ = zoo_harness.save_block_graph(tmp_path, block, meta=False)
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["verified_against"].startswith("this project's TF1 rebuild")
    assert "OutputProjectionWrapper activation" in entry["assumed"]
    assert results[0].ok


def test_a_wrapper_inside_a_stack_level_is_named_not_converted():
    shapes = {"rnn/multi_rnn_cell/cell_0/output_projection_wrapper/basic_lstm_cell/kernel": (7, 16),
              "rnn/multi_rnn_cell/cell_0/output_projection_wrapper/basic_lstm_cell/bias": (16,),
              "rnn/multi_rnn_cell/cell_0/output_projection_wrapper/kernel": (4, 5),
              "rnn/multi_rnn_cell/cell_0/output_projection_wrapper/bias": (5,)}
    with pytest.raises(UserError, match="OutputProjectionWrapper.*not inside a MultiRNNCell"):
        discover.inspect_shapes(shapes, "ckpt")


@pytest.mark.parametrize("wrapped", [WRAPPED, [W("input_projection", 2, "tanh")]],
                         ids=["both", "input"])
def test_a_static_wrapped_block_is_checked_against_its_graphs_steps(wrapped, tmp_path,
                                                                    monkeypatch):
    """static_rnn without lengths: the outermost input projection fed at every step, the outermost
    output projection (or the top cell's h) read there."""
    block = zoo.Block([C("basic_rnn", 3, activation="relu")], "bidirectional", "static",
                      wrappers=wrapped)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(4)
        x = tf.compat.v1.placeholder(tf.float32, [None, zoo_harness.TIME, 3], name="inputs")
        zoo.tf1_block(block, x)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for v in tf.compat.v1.trainable_variables():
                v.load(sess.run(v) + 0.3, sess)
            prefix = str(tmp_path / "ckpt" / "model.ckpt")
            tf.compat.v1.train.Saver().save(sess, prefix)
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["verified_against"].endswith("each direction's outputs (its wrappers' included) "
                                              "compared at every step)") == (len(wrapped) == 2)
    assert entry["verified_against"].startswith("the user's graph"), entry["verified_against"]
    assert results[0].ok and entry["largest_difference"] <= ATOL
    # Planted: the outermost projection's activation missed.
    monkeypatch.setattr(zoo.WRAPPERS[wrapped[0].kind], "options_in_graph",
                        lambda view, prefix: {})
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "planted"))
    assert not results[0].ok and results[0].largest_difference > 10 * ATOL
