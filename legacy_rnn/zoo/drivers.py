"""The TF1 drivers: one class each, knowing nothing about the cells they run.

A driver knows the scopes TF1 gives the cells it runs (so a checkpoint's names say which driver
wrote them), builds itself in a tf.compat.v1 graph, and lays out the Keras 3 twin's layers:

| driver | direction | variables, under the block's prefix (default in brackets) |
|---|---|---|
| `static_rnn` / `dynamic_rnn` | forward | `[rnn]/<cell>/...`; a MultiRNNCell: `[rnn]/multi_rnn_cell/cell_K/<cell>/...` |
| `static_bidirectional_rnn` / `bidirectional_dynamic_rnn` | bidirectional | `[bidirectional_rnn]/{fw,bw}/<as forward>` |
| `stack_bidirectional_rnn` (tf.contrib, reproduced) | stack_bidirectional | `[stack_bidirectional_rnn]/cell_K/{fw,bw}/<cell>/...` |
| `stack_bidirectional_dynamic_rnn` (tf.contrib, reproduced) | stack_bidirectional | `[stack_bidirectional_rnn]/cell_K/bidirectional_rnn/{fw,bw}/<cell>/...` |

`<cell>` is the cell's own scope; DropoutWrapper and ResidualWrapper add none. A wrapper with
variables (`wrappers.py`) adds its scope above the cell or MultiRNNCell it wraps:
`[rnn]/output_projection_wrapper/<cell>/...`. The static and
dynamic drivers of one direction write the same names for forward and bidirectional blocks: only
the graph (`.meta`) tells them apart (`discover` takes the dynamic one until it does).

A driver is registered under (direction, driver); adding one is adding a class here (or in a
module of its own that calls `register`), with its `patterns` for discovery.
"""
import re

import keras
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.zoo import wrappers

DRIVERS = {}  # (direction, driver) -> Driver


def register(driver_class):
    DRIVERS[(driver_class.direction, driver_class.driver)] = driver_class()
    return driver_class


def get(direction, driver):
    return DRIVERS.get((direction, driver))


def path(*parts):
    return "/".join(part for part in parts if part)


class Driver:
    direction = ""  # forward, bidirectional, stack_bidirectional
    driver = ""  # static or dynamic
    tf1_name = ""  # the TF1 function, for descriptions
    default_scope = ""
    # Discovery: regular expressions over the path of a cell's scope's parent, with groups
    # `root` (the block's prefix), and where the driver has them `k` (level) and `d` (fw / bw).
    # A stack (`k`) without `multi_rnn_cell` in its pattern is a stack of the driver's own.
    patterns = ()
    specificity = 0  # discovery tries the drivers with more specific patterns first
    halves = ("fw",)

    # --- Names ----------------------------------------------------------------------------
    def cells(self, block):
        """[(keras layer name, Level, TF1 variable prefix of its cell)], bottom level first."""
        out = []
        scopes = [spec.wrapper.scope for spec in block.wrappers]
        for tag, levels in self._halves(block):
            for k, level in enumerate(levels):
                stack = f"multi_rnn_cell/cell_{k}" if block.multi else ""
                out.append((f"{tag}_{k}", level,
                            path(self._base(block, tag), *scopes, stack, level.scope)))
        return out

    def wrapped(self, block):
        """[(keras layer name, WrapperSpec, TF1 prefix of its scope, half, index)], each
        direction's outermost wrapper first."""
        scopes = [spec.wrapper.scope for spec in block.wrappers]
        return [(wrappers.layer_name(tag, i, spec), spec,
                 path(self._base(block, tag), *scopes[:i + 1]), tag, i)
                for tag, _ in self._halves(block) for i, spec in enumerate(block.wrappers)]

    def _base(self, block, tag):
        return block.prefix if self.direction == "forward" else path(block.prefix, tag)

    def _halves(self, block):
        return [("fw", block.levels)] + ([("bw", block.backward_levels)]
                                         if "bw" in self.halves else [])

    def input_sizes(self, block, input_size):
        """{keras layer name: the input size its cell reads}."""
        below = {tag: block.through_wrappers(input_size, levels)[2]
                 for tag, levels in self._halves(block)}
        sizes = {}
        for name, level, _ in self.cells(block):
            tag = name.split("_")[0]
            sizes[name] = below[tag]
            below[tag] = level.cell.output_size
        return sizes

    def match(self, parent):
        """(root, level, half, stacked) when a cell whose scope's parent is `parent` sits where
        this driver puts cells, else None."""
        for pattern in self.patterns:
            m = re.match(pattern, parent)
            if m:
                groups = m.groupdict()
                return (groups["root"], int(groups.get("k") or 0), groups.get("d") or "fw",
                        "multi_rnn_cell" in pattern)
        return None

    def describe(self, block):
        def stack(levels):
            names = [level.cell.describe() for level in levels]
            body = names[0] if not block.multi else f"MultiRNNCell([{', '.join(names)}])"
            for spec in reversed(block.wrappers):
                body = spec.describe(body)
            return body
        body = stack(block.levels)
        if "bw" in self.halves:
            body = f"fw={body}, bw={stack(block.backward_levels)}"
        elif not block.multi and block.levels[0].cell.family.called_directly:
            return f"{body} called on the sequence under {block.prefix}/"
        return f"{self.tf1_name}({body}) under {block.prefix}/"

    # --- TF1 ------------------------------------------------------------------------------
    def build(self, block, cells, inputs, sequence_length, initial_state, time_major, dynamic,
              stacked, name):
        """Runs the TF1 driver over `inputs` with `cells` ({"fw": cell, "bw": cell}, each the
        level stack already wrapped); returns (outputs, final state)."""
        raise NotImplementedError

    def graph_calls(self, block):
        """[(name scope of one dynamic_rnn call, half, first level, last level)]: where the
        driver ran `dynamic_rnn` in a graph it built; () for static drivers."""
        return ()

    # --- Keras 3 --------------------------------------------------------------------------
    def keras(self, block, x, seqlen, run_stack):
        """The Keras twin's sequence from `x`; `run_stack(tag, levels, x, first)` adds one
        direction's levels."""
        out = run_stack("fw", block.levels, x, 0)
        if "bw" not in self.halves:
            return out
        return keras.layers.Concatenate(name="concat")([out, _backward(
            run_stack, "bw", block.backward_levels, x, seqlen, 0)])

    def tf1_state(self, block, level_states):
        """The final state as the TF1 driver returns it, from {layer name: TF1 level state}."""
        def stack(tag, levels):
            each = tuple(level_states[f"{tag}_{k}"] for k in range(len(levels)))
            return each if block.multi else each[0]
        states = tuple(stack(tag, levels) for tag, levels in self._halves(block))
        return states if "bw" in self.halves else states[0]


def _backward(run_stack, tag, levels, x, seqlen, first):
    """A backward half: run forward over the sequence reversed within its length, reversed back,
    exactly as TF1 does it."""
    flipped = keras_cells.reverse_within_length(x, seqlen)
    return keras_cells.reverse_within_length(run_stack(tag, levels, flipped, first), seqlen)


def _steps(inputs, time_major):
    return tf.unstack(inputs, axis=0 if time_major else 1)


def _stacked(outputs, time_major, stacked):
    return tf.stack(outputs, axis=0 if time_major else 1) if stacked else outputs


FORWARD = [r"^(?P<root>.*?)/?multi_rnn_cell/cell_(?P<k>\d+)$", r"^(?P<root>.*)$"]
BIDIRECTIONAL = [r"^(?P<root>.*?)/?(?P<d>fw|bw)/multi_rnn_cell/cell_(?P<k>\d+)$",
                 r"^(?P<root>.*?)/?(?P<d>fw|bw)$"]


@register
class DynamicRNN(Driver):
    direction, driver, tf1_name, default_scope = "forward", "dynamic", "dynamic_rnn", "rnn"
    patterns = FORWARD

    def build(self, block, cells, inputs, sequence_length, initial_state, time_major, dynamic,
              stacked, name):
        return tf.compat.v1.nn.dynamic_rnn(
            cells["fw"], inputs, sequence_length=sequence_length, initial_state=initial_state,
            dtype=tf.float32, scope=name, time_major=time_major, **dynamic)

    def graph_calls(self, block):
        return [(block.prefix, "fw", 0, len(block.levels) - 1)]


@register
class StaticRNN(Driver):
    direction, driver, tf1_name, default_scope = "forward", "static", "static_rnn", "rnn"
    patterns = FORWARD

    def build(self, block, cells, inputs, sequence_length, initial_state, time_major, dynamic,
              stacked, name):
        outputs, state = tf.compat.v1.nn.static_rnn(
            cells["fw"], _steps(inputs, time_major), initial_state=initial_state,
            dtype=tf.float32, sequence_length=sequence_length, scope=name)
        return _stacked(outputs, time_major, stacked), state


@register
class BidirectionalDynamicRNN(Driver):
    direction, driver = "bidirectional", "dynamic"
    tf1_name, default_scope = "bidirectional_dynamic_rnn", "bidirectional_rnn"
    patterns, halves, specificity = BIDIRECTIONAL, ("fw", "bw"), 1

    def build(self, block, cells, inputs, sequence_length, initial_state, time_major, dynamic,
              stacked, name):
        state_fw, state_bw = initial_state or (None, None)
        outputs, states = tf.compat.v1.nn.bidirectional_dynamic_rnn(
            cells["fw"], cells["bw"], inputs, sequence_length=sequence_length,
            initial_state_fw=state_fw, initial_state_bw=state_bw, dtype=tf.float32, scope=name,
            time_major=time_major, **dynamic)
        return tf.concat(outputs, 2), states

    def graph_calls(self, block):
        last = len(block.levels) - 1
        return [(f"{block.prefix}/fw/fw", "fw", 0, last), (f"{block.prefix}/bw/bw", "bw", 0, last)]


@register
class StaticBidirectionalRNN(Driver):
    direction, driver = "bidirectional", "static"
    tf1_name, default_scope = "static_bidirectional_rnn", "bidirectional_rnn"
    patterns, halves, specificity = BIDIRECTIONAL, ("fw", "bw"), 1

    def build(self, block, cells, inputs, sequence_length, initial_state, time_major, dynamic,
              stacked, name):
        state_fw, state_bw = initial_state or (None, None)
        outputs, s_fw, s_bw = tf.compat.v1.nn.static_bidirectional_rnn(
            cells["fw"], cells["bw"], _steps(inputs, time_major), initial_state_fw=state_fw,
            initial_state_bw=state_bw, dtype=tf.float32, sequence_length=sequence_length,
            scope=name)
        return _stacked(outputs, time_major, stacked), (s_fw, s_bw)


class _StackBidirectional(Driver):
    """tf.contrib's stacks of bidirectional levels, each level reading the previous level's
    concatenated outputs; each level's cells are passed one by one (no MultiRNNCell)."""
    direction, default_scope, halves = "stack_bidirectional", "stack_bidirectional_rnn", \
        ("fw", "bw")
    specificity = 2
    inner = ""  # the scope each level's bidirectional call adds

    def cells(self, block):
        return [(f"{tag}_{k}", level, path(block.prefix, f"cell_{k}", self.inner, tag,
                                           level.scope))
                for k in range(len(block.levels))
                for tag, level in (("fw", block.levels[k]), ("bw", block.backward_levels[k]))]

    def input_sizes(self, block, input_size):
        sizes = {}
        for name, _, _ in self.cells(block):
            k = int(name.split("_")[1])
            sizes[name] = input_size if k == 0 else (
                block.levels[k - 1].cell.output_size
                + block.backward_levels[k - 1].cell.output_size)
        return sizes

    def describe(self, block):
        return (f"{self.tf1_name}([{', '.join(level.cell.describe() for level in block.levels)}])"
                f" under {block.prefix}/")

    def keras(self, block, x, seqlen, run_stack):
        out = x
        for k, (fw, bw) in enumerate(zip(block.levels, block.backward_levels)):
            out = keras.layers.Concatenate(name=f"concat_{k}")([
                run_stack("fw", [fw], out, k), _backward(run_stack, "bw", [bw], out, seqlen, k)])
        return out

    def tf1_state(self, block, level_states):
        return tuple(tuple(level_states[f"{tag}_{k}"] for k in range(len(block.levels)))
                     for tag in ("fw", "bw"))


@register
class StackBidirectionalDynamicRNN(_StackBidirectional):
    driver, tf1_name, inner = "dynamic", "stack_bidirectional_dynamic_rnn", "bidirectional_rnn"
    patterns = [r"^(?P<root>.*?)/?cell_(?P<k>\d+)/bidirectional_rnn/(?P<d>fw|bw)$"]

    def build(self, block, cells, inputs, sequence_length, initial_state, time_major, dynamic,
              stacked, name):
        outputs, s_fw, s_bw = stack_bidirectional_dynamic_rnn(
            cells["fw"], cells["bw"], inputs, *(initial_state or (None, None)),
            dtype=tf.float32, sequence_length=sequence_length, scope=name,
            time_major=time_major, **dynamic)
        return outputs, (s_fw, s_bw)

    def graph_calls(self, block):
        return [(f"{block.prefix}/cell_{k}/bidirectional_rnn/{d}/{d}", d, k, k)
                for k in range(len(block.levels)) for d in ("fw", "bw")]


@register
class StackBidirectionalRNN(_StackBidirectional):
    driver, tf1_name = "static", "stack_bidirectional_rnn"
    patterns = [r"^(?P<root>.*?)/?cell_(?P<k>\d+)/(?P<d>fw|bw)$"]

    def build(self, block, cells, inputs, sequence_length, initial_state, time_major, dynamic,
              stacked, name):
        outputs, s_fw, s_bw = stack_bidirectional_rnn(
            cells["fw"], cells["bw"], _steps(inputs, time_major), *(initial_state or (None, None)),
            dtype=tf.float32, sequence_length=sequence_length, scope=name)
        return _stacked(outputs, time_major, stacked), (s_fw, s_bw)


def stack_bidirectional_rnn(cells_fw, cells_bw, inputs, initial_states_fw=None,
                            initial_states_bw=None, dtype=None, sequence_length=None, scope=None):
    """`tf.contrib.rnn.stack_bidirectional_rnn` (TF 1.x), which tf.contrib's removal took away:
    each level a `static_bidirectional_rnn` over the previous level's concatenated outputs,
    under `stack_bidirectional_rnn/cell_K` (the level's scope is passed on, so no
    `bidirectional_rnn` scope appears in the names). Returns (outputs, states_fw, states_bw)."""
    states_fw, states_bw, layer = [], [], inputs
    with tf.compat.v1.variable_scope(scope or "stack_bidirectional_rnn"):
        for k, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):
            with tf.compat.v1.variable_scope(f"cell_{k}") as cell_scope:
                layer, state_fw, state_bw = tf.compat.v1.nn.static_bidirectional_rnn(
                    cell_fw, cell_bw, layer,
                    initial_state_fw=initial_states_fw[k] if initial_states_fw else None,
                    initial_state_bw=initial_states_bw[k] if initial_states_bw else None,
                    sequence_length=sequence_length, dtype=dtype, scope=cell_scope)
            states_fw.append(state_fw)
            states_bw.append(state_bw)
    return layer, tuple(states_fw), tuple(states_bw)


def stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, inputs, initial_states_fw=None,
                                    initial_states_bw=None, dtype=None, sequence_length=None,
                                    parallel_iterations=None, time_major=False, scope=None,
                                    swap_memory=False):
    """`tf.contrib.rnn.stack_bidirectional_dynamic_rnn` (TF 1.x): each level a
    `bidirectional_dynamic_rnn` under `stack_bidirectional_rnn/cell_K/bidirectional_rnn/{fw,bw}`,
    its outputs concatenated for the next. Returns (outputs, states_fw, states_bw)."""
    states_fw, states_bw, layer = [], [], inputs
    with tf.compat.v1.variable_scope(scope or "stack_bidirectional_rnn"):
        for k, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):
            with tf.compat.v1.variable_scope(f"cell_{k}"):
                outputs, (state_fw, state_bw) = tf.compat.v1.nn.bidirectional_dynamic_rnn(
                    cell_fw, cell_bw, layer,
                    initial_state_fw=initial_states_fw[k] if initial_states_fw else None,
                    initial_state_bw=initial_states_bw[k] if initial_states_bw else None,
                    sequence_length=sequence_length, parallel_iterations=parallel_iterations,
                    dtype=dtype, swap_memory=swap_memory, time_major=time_major)
                layer = tf.concat(outputs, 2)
            states_fw.append(state_fw)
            states_bw.append(state_bw)
    return layer, tuple(states_fw), tuple(states_bw)


def discovery_order():
    """Drivers in the order discovery tries their patterns: the most specific first; of drivers
    that write the same names, only the dynamic one (the graph tells them apart later)."""
    seen, order = set(), []
    for d in sorted(DRIVERS.values(), key=lambda d: (-d.specificity, d.driver != "dynamic")):
        if tuple(d.patterns) not in seen:
            seen.add(tuple(d.patterns))
            order.append(d)
    return order


def default_scopes():
    return {d.default_scope for d in DRIVERS.values()}


def names():
    """The registered drivers' TF1 names, for messages."""
    return ", ".join(d.tf1_name for d in DRIVERS.values())

