"""What a checkpoint's `.meta` graph (written by `tf.compat.v1.train.Saver` beside it) says that
the variables do not: the options of each cell (forget_bias, clips, activation: every family reads
its own from the graph, `CellFamily.options_in_graph`), which driver ran a block, and where the
dynamic drivers' tensors are in the imported graph.
"""
import os

from legacy_rnn.errors import UserError
from legacy_rnn.zoo import drivers
from legacy_rnn.zoo.graphview import MAIN, GraphView  # noqa: F401  (callers build views here)


def meta_path(prefix):
    path = prefix + ".meta"
    return path if os.path.exists(path) else None


def read_meta(path):
    """The MetaGraphDef of a `.meta` file; UserError naming it if it cannot be read."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import meta_graph_pb2
    meta = meta_graph_pb2.MetaGraphDef()
    try:
        with open(path, "rb") as f:
            meta.ParseFromString(f.read())
    except (OSError, DecodeError) as e:
        raise UserError(f"{path} is not a readable MetaGraphDef ({type(e).__name__}: "
                        f"{str(e)[:200]}). Move it away to convert with flags and TF1's defaults "
                        "for the options that are not variables (forget_bias, clips, "
                        "activation: then said to be assumed), or restore the file the Saver "
                        "wrote.") from None
    return meta


def read_graph(path):
    """The GraphDef of a `.meta` file (`read_meta`)."""
    return read_meta(path).graph_def


def cell_options(view, prefix, family):
    """{option: value} the graph shows for the cell (of `family`) whose variables are under
    `prefix`; each family reads its own (`CellFamily.options_in_graph`)."""
    return family.options_in_graph(view, prefix) if view is not None else {}


def wrapper_options(view, prefix, wrapper):
    """{option: value} the graph shows for the wrapper (`zoo/wrappers.py`) under `prefix`."""
    return wrapper.options_in_graph(view, prefix) if view is not None else {}


# --- The dynamic drivers' tensors in an imported graph ---------------------------------------

def dynamic_scopes(block):
    """[(name scope of one dynamic_rnn call, 'fw'|'bw', first level, last level)]: where each
    direction (and level) of `block` ran its `dynamic_rnn` in the graph, had the graph run it with
    the dynamic driver of its direction."""
    return drivers.get(block.direction, "dynamic").graph_calls(block)


# (op name, input index) of the time-major sequence a dynamic_rnn loop reads, and the tensor it
# writes: control flow v2 (TF 2.x) and v1 (graphs written by TF 1.x).
LOOP_INPUTS = (("TensorArrayUnstack/TensorListFromTensor", 0),
               ("TensorArrayUnstack/TensorArrayScatter/TensorArrayScatterV3", 2))
LOOP_OUTPUTS = ("TensorArrayV2Stack/TensorListStack:0", "TensorArrayStack/TensorArrayGatherV3:0")


def driver_tensors(graph, scope):
    """(time-major input tensor, sequence-length tensor or None, time-major output tensor) of the
    `dynamic_rnn` that ran under name scope `scope` in `graph` (batch-major or time-major alike:
    the loop's own tensors), or None when the graph has no such call."""
    def first(candidates, get):
        for name in candidates:
            try:
                return get(name)
            except KeyError:
                continue
        return None

    x = first(LOOP_INPUTS, lambda c: graph.get_operation_by_name(f"{scope}/{c[0]}").inputs[c[1]])
    output = first(LOOP_OUTPUTS, lambda c: graph.get_tensor_by_name(f"{scope}/{c}"))
    if x is None or output is None:
        return None
    try:
        lengths = graph.get_operation_by_name(f"{scope}/sequence_length").inputs[0]
    except KeyError:
        lengths = None
    return x, lengths, output


def is_dynamic(view, block):
    """Whether the graph ran `block` with the dynamic drivers (a loop in its scope)."""
    scope = dynamic_scopes(block)[0][0]
    return any(fn == MAIN and name.startswith(scope + "/") and node is not None and node.op in
               ("While", "StatelessWhile", "Enter") for (fn, name), node in view.nodes.items())
