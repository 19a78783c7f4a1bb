"""The layers a whole TF1 model translates into (`legacy_rnn/conversion/whole.py`): one `GraphOp`
per TF1 op around the recurrent blocks, computing that op's function with `keras.ops` (so the
model runs on TensorFlow, JAX and PyTorch), and one `GraphVariable` per TF1 variable or constant
it reads. Both are registered: a translated model loads in safe mode after `import
legacy_rnn.keras_graph`, and no code is read from the file.

    model = keras.saving.load_model("model.keras")   # after: import legacy_rnn.keras_graph

Each op's function is a plain function of its inputs and its attributes (JSON values kept in
the layer's config); the inputs TF1 gives as constants (axes, permutations, slice bounds) are
attributes here. `OPS` is the set translated.
"""
import keras
import numpy as np
from keras import ops

PACKAGE = "legacy_rnn"


def _dtype(name):
    return {"float": "float32", "double": "float64", "int": "int32", "long": "int64"}.get(
        name, name)


def _shape_argument(shape):
    """A computed shape as the backend's reshape takes it: ints where they are known (numpy, as
    the shape arithmetic gives them on JAX and PyTorch, whose shapes are static), else the
    tensor (TensorFlow's graph)."""
    if isinstance(shape, np.ndarray):
        return tuple(int(d) for d in shape.ravel())
    if keras.backend.backend() != "tensorflow":
        # Keras hands a layer's NumPy outputs to the next layer as backend tensors; their values
        # are known (eager), and torch.reshape takes only ints.
        return tuple(int(d) for d in np.asarray(ops.convert_to_numpy(shape)).ravel())
    return shape


def _binary(fn):
    return lambda inputs, attrs: fn(inputs[0], inputs[1])


def _unary(fn):
    return lambda inputs, attrs: fn(inputs[0])


def _matmul(inputs, attrs):
    a, b = inputs
    if attrs.get("transpose_a") or attrs.get("adj_x"):
        a = ops.swapaxes(a, -1, -2)
    if attrs.get("transpose_b") or attrs.get("adj_y"):
        b = ops.swapaxes(b, -1, -2)
    return ops.matmul(a, b)


def _shape(inputs, attrs):
    dims = ops.shape(inputs[0])
    dtype = _dtype(attrs["out_type"])
    if all(isinstance(d, int) for d in dims):  # JAX and PyTorch shapes (and TF's, eagerly)
        return np.asarray(dims, dtype)
    return ops.stack([ops.cast(d, dtype) for d in dims])


def _reshape(inputs, attrs):
    shape = attrs.get("shape")
    return ops.reshape(inputs[0], tuple(shape) if shape is not None
                       else _shape_argument(inputs[1]))


def _strided_slice(inputs, attrs):
    """TF's strided slice from its constant bounds and masks, as a Python index."""
    begin, end, strides = attrs["begin"], attrs["end"], attrs["strides"]
    index = []
    for i in range(len(begin)):
        bit = 1 << i
        if attrs["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif attrs["new_axis_mask"] & bit:
            index.append(None)
        elif attrs["shrink_axis_mask"] & bit:
            index.append(begin[i])
        else:
            index.append(slice(None if attrs["begin_mask"] & bit else begin[i],
                               None if attrs["end_mask"] & bit else end[i], strides[i]))
    return inputs[0][tuple(index)]


def _gather(inputs, attrs):
    params, indices = inputs[0], inputs[1]
    axis, batch_dims = attrs.get("axis", 0), attrs.get("batch_dims", 0)
    if batch_dims:
        if batch_dims != 1 or axis != 1:
            raise ValueError("GatherV2 with batch_dims other than 1 over axis 1")
        return ops.take_along_axis(params, ops.expand_dims(indices, -1), axis=1)[..., 0] \
            if len(ops.shape(indices)) == 1 else ops.take_along_axis(params, indices, axis=1)
    return ops.take(params, ops.cast(indices, "int32"), axis=axis)


def _reverse_sequence(inputs, attrs):
    x, lengths = inputs
    seq_dim, batch_dim = attrs["seq_dim"], attrs["batch_dim"]
    if (seq_dim, batch_dim) == (0, 1):
        x = ops.swapaxes(x, 0, 1)
    elif (seq_dim, batch_dim) != (1, 0):
        raise ValueError(f"ReverseSequence over seq_dim {seq_dim}, batch_dim {batch_dim}")
    time = ops.shape(x)[1]
    t = ops.expand_dims(ops.arange(time, dtype="int32"), 0)
    n = ops.expand_dims(ops.cast(lengths, "int32"), 1)
    index = ops.where(ops.less(t, n), n - 1 - t, t)
    while len(index.shape) < len(x.shape):
        index = ops.expand_dims(index, -1)
    index = ops.broadcast_to(index, ops.shape(x))
    out = ops.take_along_axis(x, index, axis=1)
    return ops.swapaxes(out, 0, 1) if (seq_dim, batch_dim) == (0, 1) else out


def _axes(attrs):
    """A reduction's axis attribute as keras.ops and numpy take it (TF gives a scalar for
    `reduce_mean(x, axis=1)`, a list for `axis=[0, 1]`)."""
    axis = attrs["axis"]
    return tuple(axis) if isinstance(axis, (list, tuple)) else int(axis)


def _reduce(fn):
    def reduce(inputs, attrs):
        return fn(inputs[0], axis=_axes(attrs), keepdims=bool(attrs["keep_dims"]))
    return reduce


def _range(inputs, attrs):
    start, limit, delta = inputs
    if keras.backend.backend() == "torch":  # torch.arange takes Python numbers, not 0-d tensors
        start, limit, delta = (np.asarray(ops.convert_to_numpy(v)).item()
                               for v in (start, limit, delta))
    return ops.arange(start, limit, delta, dtype=_dtype(attrs["Tidx"]))


def _split(inputs, attrs):
    """Split (equal parts: `num_split`) and SplitV (`sizes`, one of them -1: the rest, read from
    the static shape) along `axis`: a list of tensors, as the op's outputs."""
    x, axis = inputs[0], attrs["axis"]
    if "sizes" not in attrs:
        return list(ops.split(x, attrs["num_split"], axis=axis))
    sizes = list(attrs["sizes"])
    if -1 in sizes:
        total = x.shape[axis]
        if total is None:
            raise ValueError("SplitV with a size -1 over an axis of unknown size")
        sizes[sizes.index(-1)] = total - sum(size for size in sizes if size != -1)
    return list(ops.split(x, np.cumsum(sizes)[:-1].tolist(), axis=axis))


def _select(inputs, attrs):
    condition, a, b = inputs
    if len(condition.shape) == 1 and len(a.shape) > 1:  # TF1 Select: one condition per row
        condition = ops.reshape(condition, (-1,) + (1,) * (len(a.shape) - 1))
    return ops.where(condition, a, b)


OPS = {
    "Identity": _unary(lambda x: x),
    "StopGradient": _unary(ops.stop_gradient),
    "MatMul": _matmul,
    "BatchMatMulV2": _matmul,
    "BiasAdd": _binary(ops.add),
    "Add": _binary(ops.add),
    "AddV2": _binary(ops.add),
    "Sub": _binary(ops.subtract),
    "Mul": _binary(ops.multiply),
    "RealDiv": _binary(ops.divide),
    "Maximum": _binary(ops.maximum),
    "Minimum": _binary(ops.minimum),
    "AddN": lambda inputs, attrs: sum(inputs[1:], inputs[0]),
    "Neg": _unary(ops.negative),
    "Sign": _unary(ops.sign),
    "Abs": _unary(ops.abs),
    "Square": _unary(ops.square),
    "Sqrt": _unary(ops.sqrt),
    "Exp": _unary(ops.exp),
    "Log": _unary(ops.log),
    "Softmax": _unary(lambda x: ops.softmax(x, axis=-1)),
    "LogSoftmax": _unary(lambda x: ops.log_softmax(x, axis=-1)),
    "Sigmoid": _unary(ops.sigmoid),
    "Tanh": _unary(ops.tanh),
    "Relu": _unary(ops.relu),
    "Relu6": _unary(ops.relu6),
    "Elu": _unary(ops.elu),
    "Softplus": _unary(ops.softplus),
    "Cast": lambda inputs, attrs: ops.cast(inputs[0], _dtype(attrs["DstT"])),
    "Shape": _shape,
    "Reshape": _reshape,
    "Transpose": lambda inputs, attrs: ops.transpose(inputs[0], attrs["perm"]),
    "ConcatV2": lambda inputs, attrs: ops.concatenate(inputs, axis=attrs["axis"]),
    "Pack": lambda inputs, attrs: ops.stack(inputs, axis=attrs["axis"]),
    "Unpack": lambda inputs, attrs: ops.unstack(inputs[0], attrs["num"], axis=attrs["axis"]),
    "Split": _split,
    "SplitV": _split,
    "StridedSlice": _strided_slice,
    "Squeeze": lambda inputs, attrs: ops.squeeze(inputs[0], axis=tuple(attrs["squeeze_dims"])
                                                 or None),
    "ExpandDims": lambda inputs, attrs: ops.expand_dims(inputs[0], attrs["dim"]),
    "GatherV2": _gather,
    "ResourceGather": _gather,
    "ReverseSequence": _reverse_sequence,
    "Range": _range,
    "Select": _select,
    "SelectV2": _select,
    "Mean": _reduce(ops.mean),
    "Sum": _reduce(ops.sum),
    "Max": _reduce(ops.max),
    "Prod": _reduce(ops.prod),
    "ArgMax": lambda inputs, attrs: ops.cast(ops.argmax(inputs[0], axis=attrs["axis"]),
                                             _dtype(attrs["output_type"])),
    # Not a TF op: the lengths a static driver without sequence_length implies (every step).
    "FullLengths": lambda inputs, attrs: ops.full((ops.shape(inputs[0])[0],),
                                                  ops.shape(inputs[0])[1], "int32"),
    "Equal": _binary(ops.equal),
    "Less": _binary(ops.less),
    "Greater": _binary(ops.greater),
}


# Shape arithmetic in numpy when every input is a numpy array (a static shape, small integer
# constants): JAX traces every keras.ops call under jit, and its reshape needs concrete ints.
NUMPY_OPS = {
    "Identity": lambda inputs, attrs: inputs[0],
    "Cast": lambda inputs, attrs: inputs[0].astype(_dtype(attrs["DstT"])),
    "Add": lambda inputs, attrs: inputs[0] + inputs[1],
    "AddV2": lambda inputs, attrs: inputs[0] + inputs[1],
    "Sub": lambda inputs, attrs: inputs[0] - inputs[1],
    "Mul": lambda inputs, attrs: inputs[0] * inputs[1],
    "Maximum": lambda inputs, attrs: np.maximum(inputs[0], inputs[1]),
    "Minimum": lambda inputs, attrs: np.minimum(inputs[0], inputs[1]),
    "Pack": lambda inputs, attrs: np.stack(inputs, axis=attrs["axis"]),
    "ConcatV2": lambda inputs, attrs: np.concatenate(inputs, axis=attrs["axis"]),
    "StridedSlice": lambda inputs, attrs: np.asarray(_strided_slice(inputs, attrs)),
    "GatherV2": lambda inputs, attrs: np.take(inputs[0], inputs[1], axis=attrs.get("axis", 0)),
    "Prod": lambda inputs, attrs: np.prod(inputs[0], axis=_axes(attrs),
                                          keepdims=bool(attrs["keep_dims"])),
    "Sum": lambda inputs, attrs: np.sum(inputs[0], axis=_axes(attrs),
                                        keepdims=bool(attrs["keep_dims"])),
    "ExpandDims": lambda inputs, attrs: np.expand_dims(inputs[0], attrs["dim"]),
    "Squeeze": lambda inputs, attrs: np.squeeze(inputs[0], axis=tuple(attrs["squeeze_dims"])
                                                or None),
}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GraphOp(keras.layers.Layer):
    """One TF1 op: `OPS[op](inputs, attrs)`. `outputs`: how many tensors it returns.
    `constants`: {input index: {"value", "dtype"}}, the small integer inputs the graph gives as
    constants, merged into the inputs at their places as numpy arrays. `output_specs`: [(shape
    with None, dtype)] from the graph's shape inference, where it knows them."""

    def __init__(self, op, attrs=None, outputs=1, constants=None, output_specs=None, **kwargs):
        super().__init__(**kwargs)
        if op not in OPS:
            raise ValueError(f"GraphOp {op!r} is not one of the translated ops")
        self.op, self.attrs, self.outputs = op, dict(attrs or {}), outputs
        self.constants = {str(k): v for k, v in (constants or {}).items()}
        self.output_specs = output_specs

    def _inputs(self, inputs):
        given = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        merged, total = [], len(given) + len(self.constants)
        for i in range(total):
            constant = self.constants.get(str(i))
            merged.append(np.asarray(constant["value"], constant["dtype"]) if constant
                          else given.pop(0))
        return merged

    def call(self, inputs):
        merged = self._inputs(inputs)
        if self.op in NUMPY_OPS and all(isinstance(x, (np.ndarray, np.generic))
                                        for x in merged):
            out = NUMPY_OPS[self.op](merged, self.attrs)
        else:
            out = OPS[self.op](merged, self.attrs)
        return list(out) if self.outputs > 1 else out

    def compute_output_spec(self, inputs):
        if self.output_specs and all(shape is not None for shape, _ in self.output_specs):
            specs = [keras.KerasTensor(tuple(shape), dtype=dtype)
                     for shape, dtype in self.output_specs]
            return specs if self.outputs > 1 else specs[0]
        return super().compute_output_spec(inputs)

    def get_config(self):
        return {**super().get_config(), "op": self.op, "attrs": self.attrs,
                "outputs": self.outputs, "constants": self.constants,
                "output_specs": self.output_specs}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GraphVariable(keras.layers.Layer):
    """A TF1 variable (trainable) or constant (not): its value, whatever it is called on (the
    call only places it in the functional graph)."""

    def __init__(self, shape, value_dtype="float32", **kwargs):
        super().__init__(**kwargs)
        self.value_shape, self.value_dtype = tuple(shape), value_dtype
        self.value = self.add_weight(shape=self.value_shape, dtype=value_dtype,
                                     initializer="zeros", trainable=self.trainable,
                                     name="value")

    def call(self, anchor):
        return ops.copy(self.value)  # a tensor (convert_to_tensor leaves a Variable as it is)

    def compute_output_spec(self, anchor):
        return keras.KerasTensor(self.value_shape, dtype=self.value_dtype)

    def get_config(self):
        return {**super().get_config(), "shape": list(self.value_shape),
                "value_dtype": self.value_dtype}
