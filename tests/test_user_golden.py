"""Golden numbers of a user's own TF1 model (not one of the experiments): a graph in the shape of
the PTB word LM and the taggers, written with TF1 control flow as TF 1.x wrote it (embedding ->
dynamic_rnn(LSTMCell(forget_bias=0.5), sequence_length) -> projection -> sparse softmax loss in
the losses collection, Adam in the train_op collection). Recorded, then checked: identical in the
same environment; a planted kernel change is CHANGED and the first op that moved is named; a
difference of one ulp is rounding where the environment differs and CHANGED where it does not."""
import json
import os
import shutil
import sys
from xml.etree import ElementTree

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from legacy_rnn.errors import UserError
from legacy_rnn.regression import canary, drift, user_model

VOCAB, EMBED, UNITS, TIME, CLASSES = 11, 3, 4, 6, 5
OUTPUTS = ["logits:0", "loss:0"]


def build_user_model(prefix, v1_loops=True):
    tf1 = tf.compat.v1
    if v1_loops:
        tf1.disable_control_flow_v2()  # the loops a TF 1.x Saver wrote
    try:
        graph = tf.Graph()
        with graph.as_default():
            tf1.set_random_seed(3)
            ids = tf1.placeholder(tf.int32, [None, TIME], name="ids")
            lengths = tf1.placeholder(tf.int32, [None], name="lengths")
            labels = tf1.placeholder(tf.int32, [None, TIME], name="labels")
            embedding = tf1.get_variable("embedding", [VOCAB, EMBED])
            x = tf.nn.embedding_lookup(embedding, ids)
            cell = tf1.nn.rnn_cell.LSTMCell(UNITS, forget_bias=0.5)
            out, _ = tf1.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32)
            w = tf1.get_variable("softmax_w", [UNITS, CLASSES])
            b = tf1.get_variable("softmax_b", [CLASSES])
            logits = tf.identity(tf.tensordot(out, w, 1) + b, name="logits")
            loss = tf1.losses.sparse_softmax_cross_entropy(labels, logits)
            loss = tf.identity(loss, name="loss")
            train = tf1.train.AdamOptimizer(0.01).minimize(loss)
            tf1.add_to_collection(tf1.GraphKeys.TRAIN_OP, train)
            with tf1.Session(graph=graph) as sess:
                sess.run(tf1.global_variables_initializer())
                tf1.train.Saver().save(sess, prefix)
    finally:
        tf1.enable_control_flow_v2()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("user")
    prefix = str(tmp / "model.ckpt")
    build_user_model(prefix)
    fresh, trace = user_model.record(prefix, OUTPUTS)
    path = str(tmp / "model.golden.json")
    user_model.write(path, fresh, trace)
    return prefix, path


def test_inputs_are_generated_within_what_the_graph_allows(recorded):
    record = user_model.load(recorded[1])
    inputs = {k: user_model._decode(v) for k, v in record["inputs"].items()}
    assert sorted(inputs) == ["ids", "labels", "lengths"]
    assert inputs["ids"].shape == (user_model.BATCH, TIME)
    assert 0 <= inputs["ids"].min() and inputs["ids"].max() < VOCAB
    assert 0 <= inputs["labels"].min() and inputs["labels"].max() < CLASSES
    assert 1 <= inputs["lengths"].min() and inputs["lengths"].max() <= TIME
    labels = [label for label, _ in record["quantities"]]
    assert labels[:2] == ["output logits:0", "output loss:0"]
    assert "loss (the losses collection)" in labels
    assert "gradient wrt rnn/lstm_cell/kernel" in labels and "gradient wrt embedding" in labels
    assert any(label.startswith("after one step of Adam") for label in labels)


def test_the_recorded_numbers_are_the_graphs_own(recorded):
    # Independently of the recorder: the graph imported and run by hand on the recorded inputs.
    prefix, path = recorded
    record = user_model.load(path)
    inputs = {k + ":0": user_model._decode(v) for k, v in record["inputs"].items()}
    tf1 = tf.compat.v1
    tf1.disable_control_flow_v2()
    try:
        graph = tf.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            saver = tf1.train.import_meta_graph(prefix + ".meta")
            saver.restore(sess, prefix)
            logits, loss = sess.run(OUTPUTS, inputs)
    finally:
        tf1.enable_control_flow_v2()
    quantities = dict(record["quantities"])
    np.testing.assert_array_equal(user_model._decode(quantities["output logits:0"]), logits)
    np.testing.assert_array_equal(user_model._decode(quantities["output loss:0"]), loss)


def test_the_same_environment_is_identical(recorded):
    lines, ok = user_model.check(recorded[1])
    assert ok and lines[0] == "model.golden.json: identical (recorded in this environment: exact)"


def _planted_copy(prefix, directory, op_name, new_type):
    """The checkpoint copied with one op's kernel swapped in its .meta (same inputs)."""
    from tensorflow.core.protobuf import meta_graph_pb2
    os.makedirs(directory)
    base = os.path.basename(prefix)
    for name in os.listdir(os.path.dirname(prefix)):
        if name.startswith(base + "."):
            shutil.copy(os.path.join(os.path.dirname(prefix), name), directory)
    meta = meta_graph_pb2.MetaGraphDef()
    with open(prefix + ".meta", "rb") as f:
        meta.ParseFromString(f.read())
    # In the main graph (a TF 1 loop's op), or a TF 2 loop's body function (and the copy of
    # it that its gradient rewrote).
    nodes = [n for nodes in [meta.graph_def.node] + [
        f.node_def for f in meta.graph_def.library.function] for n in nodes if n.name == op_name]
    assert nodes, op_name
    for node in nodes:
        node.op = new_type
    with open(os.path.join(directory, base + ".meta"), "wb") as f:
        f.write(meta.SerializeToString())
    return os.path.join(directory, base)


def test_a_planted_kernel_change_is_changed_and_the_first_op_that_moved_is_named(
        recorded, tmp_path):
    prefix, path = recorded
    # tanh(c) inside the loop computed by another kernel: everything after it moves, nothing
    # before it does.
    planted = _planted_copy(prefix, str(tmp_path / "planted"), "rnn/while/lstm_cell/Tanh_1",
                            "Sigmoid")
    lines, ok = user_model.check(path, model=user_model.Model(planted))
    assert not ok and "CHANGED" in lines[0]
    assert any("output logits:0" in line for line in lines[1:])
    assert lines[-1].startswith("  first beyond rounding: rnn/while/lstm_cell/Tanh_1 (Sigmoid) "
                                "output 0 ")
    assert lines[-1].endswith("its inputs identical")
    # The plant is a real difference: its size is printed and far beyond rounding.
    size = float(lines[-1].split("output 0 ")[1].split(";")[0])
    assert size > 1e-3


def test_inside_a_tf2_while_loop_the_first_op_that_moved_is_named_too(tmp_path):
    """The same model saved with TF 2 control flow: its loop is a `While` op whose body is a
    library function, which the runtime lowers to frames and the trace sees under names of its
    own (`rnn/while/body/_1/lstm_cell/Tanh_1`). The planted kernel inside the body is named as
    in a TF 1 loop, with its type and its inputs' verdict from the body function."""
    prefix = str(tmp_path / "model.ckpt")
    build_user_model(prefix, v1_loops=False)
    fresh, trace = user_model.record(prefix, OUTPUTS)
    path = str(tmp_path / "model.golden.json")
    user_model.write(path, fresh, trace)
    lowered = [k for k in trace if k.endswith("/lstm_cell/Tanh_1:0#0") and "/body/_" in k]
    assert len(lowered) == 1 and lowered[0].startswith("rnn/while/body/_")
    lines, ok = user_model.check(path)
    assert ok and "identical" in lines[0]
    planted = _planted_copy(prefix, str(tmp_path / "planted"), "lstm_cell/Tanh_1", "Sigmoid")
    lines, ok = user_model.check(path, model=user_model.Model(planted))
    assert not ok and "CHANGED" in lines[0]
    assert lines[-1].startswith("  first beyond rounding: rnn/while/lstm_cell/Tanh_1 (Sigmoid) "
                                "output 0 "), lines[-1]
    assert lines[-1].endswith("its inputs identical")


def _edited(path, tmp_path, edit):
    record = json.loads(open(path).read())
    edit(record)
    out = tmp_path / "edited.golden.json"
    out.write_text(json.dumps(record))
    shutil.copy(path + user_model.TRACE_SUFFIX, str(out) + user_model.TRACE_SUFFIX)
    return str(out)


def _nudge(record):
    entry = dict(record["quantities"])["output logits:0"]
    entry["values"][0] = float(np.nextafter(np.float32(entry["values"][0]), np.float32(9)))


def test_one_ulp_is_rounding_on_another_machine_and_changed_on_the_recording_one(recorded,
                                                                                   tmp_path):
    path = recorded[1]

    def elsewhere(record):
        _nudge(record)
        record["environment"]["cpu"] = "another CPU"

    lines, ok = user_model.check(_edited(path, tmp_path, elsewhere))
    assert ok and lines[0].startswith("edited.golden.json: rounding (recorded on another "
                                      "environment: cpu)")
    assert "1 ulps" in lines[1]
    edited = _edited(path, tmp_path, _nudge)
    lines, ok = user_model.check(edited)
    assert not ok and "CHANGED (recorded in this environment: exact)" in lines[0]
    # A damaged trace costs the localisation, not the verdict.
    with open(edited + user_model.TRACE_SUFFIX, "r+b") as f:
        f.truncate(100)
    lines, ok = user_model.check(edited)
    assert not ok and "is unreadable (BadZipFile" in lines[-1]


def test_bad_golden_files_and_models_are_refused_with_the_fix(recorded, tmp_path):
    prefix, path = recorded
    truncated = tmp_path / "truncated.json"
    truncated.write_text(open(path).read()[:200])
    with pytest.raises(UserError, match="truncated or edited"):
        user_model.load(str(truncated))
    with pytest.raises(UserError, match="no longer exists"):
        user_model.check(_edited(path, tmp_path, lambda r: r.update(checkpoint="/nowhere/x")))
    with pytest.raises(UserError, match="changed since"):
        user_model.check(_edited(path, tmp_path, lambda r: r.update(fingerprint="0" * 64)))
    with pytest.raises(UserError, match=r"logit:0 is not a tensor .* similar names: logits"):
        user_model.record(prefix, ["logit"])
    with pytest.raises(UserError, match="does not exist"):
        user_model.record(str(tmp_path / "missing.ckpt"), OUTPUTS)


def test_the_canary_reuses_its_cached_baseline_and_names_the_op_that_moved_in_the_candidate(
        recorded, tmp_path, capsys, monkeypatch):
    prefix, path = recorded
    # The candidate's graph has the planted kernel: its golden file (same name) points there.
    planted = _planted_copy(prefix, str(tmp_path / "planted"), "rnn/while/lstm_cell/Tanh_1",
                            "Sigmoid")
    os.makedirs(tmp_path / "c")
    planted_golden = str(tmp_path / "c" / os.path.basename(path))
    record = json.loads(open(path).read())
    record["checkpoint"] = planted
    open(planted_golden, "w").write(json.dumps(record))

    class InProcess:  # the candidate's process, run here (test_canary runs real ones)
        returncode = 0

        def __init__(self, python, args, env_extra=None):
            assert python == sys.executable and args[0] == "legacy_rnn.regression.user_model"
            assert args[2:] == [path]
            user_model.run_recorded([planted_golden], args[1])

        def communicate(self, timeout=None):
            return "", ""

    monkeypatch.setattr(canary, "_launch", InProcess)
    # The baseline as an earlier run left it (computed here, to spare the suite a process): the
    # canary reuses it and runs only the candidate.
    base_dir = tmp_path / "cache" / ("baseline-" + canary.baseline_key(False, [path], False))
    os.makedirs(base_dir)
    user_model.run_recorded([path], str(base_dir / "models.npz"))
    (base_dir / "done").write_text("{}")
    flag_values = flags.FlagValues()
    holders = canary.define_flags(flag_values)
    flag_values(["canary", "--candidate=self", "--no_builtin", f"--golden={path}",
                 f"--out_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}",
                 f"--junit_xml={tmp_path / 'canary.xml'}"])
    assert canary.main(holders, ["canary"]) == 1
    out = capsys.readouterr()
    assert f"cached in {base_dir}" in out.err and "baseline cached" in out.out
    # (The op's type as the baseline's graph has it.)
    assert ("model/model.golden.json: first beyond rounding: rnn/while/lstm_cell/Tanh_1 (Tanh) "
            "output 0 ") in out.out and "its inputs identical" in out.out
    report = json.loads((tmp_path / "out" / "canary.json").read_text())
    rows = report["rows"]
    assert rows[0]["case"] == "model/model.golden.json" and rows[0]["verdict"] == drift.CHANGED
    assert rows[0]["quantity"] == "output logits:0"
    suite = ElementTree.parse(tmp_path / "canary.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(rows) and int(suite.get("failures")) == sum(
        r["verdict"] == drift.CHANGED for r in rows) > 0
    assert cases[0].get("classname") == "model/model.golden.json"
    assert cases[0].find("failure").get("type") == "CHANGED"
    assert "Tanh_1" in cases[0].find("failure").text


def _dense_model(prefix, with_dropout, noise=False):
    """x -> relu(x W1) -> [dropout(rate 0.5, no seed)] [+ unseeded noise] -> W2: the dropout of a
    graph saved in training mode."""
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        w1 = tf1.get_variable("w1", [3, 4], initializer=tf1.random_normal_initializer(seed=1))
        w2 = tf1.get_variable("w2", [4, 2], initializer=tf1.random_normal_initializer(seed=2))
        h = tf.nn.relu(tf.matmul(x, w1))
        if with_dropout:
            h = tf1.nn.dropout(h, rate=0.5, seed=5)
        if noise:
            h = h + tf1.random_normal(tf.shape(h), seed=6, name="noise")
        tf.identity(tf.matmul(h, w2), name="y")
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(sess, prefix)
    # Seeded to build under the suite's op determinism; saved as a graph with no seed is.
    from tensorflow.core.protobuf import meta_graph_pb2
    meta = meta_graph_pb2.MetaGraphDef()
    with open(prefix + ".meta", "rb") as f:
        meta.ParseFromString(f.read())
    for node in meta.graph_def.node:
        if node.op in ("RandomUniform", "RandomStandardNormal") and node.name.split("/")[0] in (
                "dropout", "noise"):
            node.attr["seed"].i = node.attr["seed2"].i = 0
    with open(prefix + ".meta", "wb") as f:
        f.write(meta.SerializeToString())


def test_dropout_left_in_the_saved_graph_passes_through_and_unseeded_noise_is_refused(tmp_path):
    prefix = str(tmp_path / "dropout.ckpt")
    _dense_model(prefix, with_dropout=True)
    fresh, trace = user_model.record(prefix, ["y:0"])
    assert fresh["neutralised"] == ["dropout dropout passes its input through"]
    path = str(tmp_path / "dropout.golden.json")
    user_model.write(path, fresh, trace)
    # Checked again: unseeded masks would differ on every run (half the units dropped).
    lines, ok = user_model.check(path)
    assert ok and "identical" in lines[0]
    # Independently: numpy of the same weights, no dropout.
    x = user_model._decode(fresh["inputs"]["x"])
    reader = tf.train.load_checkpoint(prefix)
    expected = np.maximum(x @ reader.get_tensor("w1"), 0) @ reader.get_tensor("w2")
    got = user_model._decode(dict(fresh["quantities"])["output y:0"])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)  # float32 matmul vs numpy
    # A random op that is not a dropout, with no seed: refused, by name.
    noisy = str(tmp_path / "noisy.ckpt")
    _dense_model(noisy, with_dropout=False, noise=True)
    with pytest.raises(UserError, match=r"random op\(s\) with no seed \(noise/RandomStandard"):
        user_model.record(noisy, ["y:0"])
