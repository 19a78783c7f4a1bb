"""TF1's `MultiRNNCell` as one cell, for the structures that wrap a whole stack (an attention
decoder's `AttentionWrapper(MultiRNNCell([...]))`, as nmt builds it) <-> the registered Keras 3
cell `legacy_rnn.keras_cells.StackedCell` over the levels' own twins.

Variables under `multi_rnn_cell/`: `cell_K/<level K's scope>/...`, level K reading level K-1's
output. The state is the tuple of the levels' states. Each level's options are the stack's as
`cell_K.<option>` (`cell_0.forget_bias`), read from the `.meta` as that level's family reads
them. A driver's own stack is not this family: the drivers name and run their levels themselves
(`blocks.Block.multi`), one Keras layer per level; this one is never a block's level
(`in_blocks = False`).
"""
import re

import numpy as np
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.errors import UserError
from legacy_rnn.zoo import cells

MAX_LEVELS = 8  # for the table of names discovery looks for


def _level_option(name):
    m = re.fullmatch(r"cell_(\d+)\.(\w+)", name)
    return (int(m.group(1)), m.group(2)) if m else None


@cells.register
class MultiRNN(cells.CellFamily):
    kind = "multi_rnn_cell"
    tf1_name = "MultiRNNCell"
    scope = "multi_rnn_cell"
    defaults = {"cells": None}
    keras_name = "keras_cells.StackedCell (registered) over the levels' twins"
    graph_options = ()
    in_blocks = False

    def _stackable(self):
        """The families a level may be: the stepped cells that hold no other cell."""
        return [f for f in cells.FAMILIES.values() if f.in_blocks and not f.called_directly
                and not {"cell", "cells"} & set(f.defaults)]

    def check_options(self, units, options):
        levels = options.get("cells")
        if not levels or not all(isinstance(c, cells.CellSpec) for c in levels):
            raise UserError("MultiRNNCell needs its cells (zoo CellSpecs), bottom first.")
        levels = list(levels)
        for name, value in options.items():
            found = _level_option(name)
            if name == "cells":
                continue
            if found is None or found[0] >= len(levels):
                raise UserError(f"MultiRNNCell has no option {name} (a level's option is "
                                f"cell_K.<option>, K < {len(levels)}).")
            k, option = found
            levels[k] = cells.CellSpec.make(levels[k].kind, levels[k].units,
                                            **{**dict(levels[k].options), option: value})
        if units != levels[-1].output_size:
            raise UserError(f"MultiRNNCell's output is its top cell's ({levels[-1].output_size}), "
                            f"not {units}.")
        return {"cells": tuple(levels)}

    def option_names(self, spec):
        return [f"cell_{k}.{name}" for k, c in enumerate(spec.get("cells"))
                for name in c.family.option_names(c)]

    def option_default(self, spec, name):
        k, option = _level_option(name)
        level = spec.get("cells")[k]
        return level.family.option_default(level, option)

    def describe(self, spec):
        return f"MultiRNNCell([{', '.join(c.describe() for c in spec.get('cells'))}])"

    def cases(self):
        levels = (cells.CellSpec.make("gru", 3), cells.CellSpec.make("basic_lstm", 4,
                                                                     forget_bias=0.5))
        return {"MultiRNNCell([GRUCell, BasicLSTMCell(forget_bias)])": cells.CellSpec.make(
            self.kind, 4, cells=levels)}

    def variable_names(self):
        return {f"cell_{k}/{f.scope}/{name}" for k in range(MAX_LEVELS)
                for f in self._stackable() for name in f.variable_names()}

    # --- Recognition ----------------------------------------------------------------------
    def recognize(self, shapes):
        groups = {}
        for name, shape in shapes.items():
            head, _, rest = name.partition("/")
            m = re.fullmatch(r"cell_(\d+)", head)
            if not m or "/" not in rest:
                return None
            groups.setdefault(int(m.group(1)), {})[rest] = shape
        if not groups or sorted(groups) != list(range(len(groups))):
            return None
        levels, first_input = [], None
        for k in range(len(groups)):
            found = self._level(groups[k])
            if found is None:
                return None
            spec, input_size = found
            if k and input_size != levels[-1].output_size:
                return None
            first_input = input_size if k == 0 else first_input
            levels.append(spec)
        spec = cells.CellSpec.make(self.kind, levels[-1].output_size, cells=tuple(levels))
        return (spec, first_input) if self.variables(spec, first_input) == shapes else None

    def _level(self, shapes):
        scopes = {name.split("/", 1)[0] for name in shapes}
        if len(scopes) != 1:
            return None
        (scope,) = scopes
        relative = {name[len(scope) + 1:]: shape for name, shape in shapes.items()}
        for family in self._stackable():
            found = family.recognize(relative) if family.scope == scope else None
            if found:
                return found
        return None

    def in_graph(self, view, prefix):
        return None  # its levels' ops are their families'

    def steps_in_graph(self, view, prefix):
        return None

    def options_in_graph(self, view, prefix):
        """Each level's options, as its family reads them under `cell_K/<scope>`."""
        options = {}
        for k in range(MAX_LEVELS):
            for family in self._stackable():
                level = f"{prefix}/cell_{k}/{family.scope}"
                if family.in_graph(view, level):
                    options.update({f"cell_{k}.{name}": value for name, value in
                                    family.options_in_graph(view, level).items()})
                    break
        return options

    # --- TF1 side -------------------------------------------------------------------------
    def tf1_cell(self, spec, name=None):
        return tf.compat.v1.nn.rnn_cell.MultiRNNCell(
            [c.family.tf1_cell(c) for c in spec.get("cells")])

    def output_size(self, spec):
        return spec.get("cells")[-1].output_size

    def variables(self, spec, input_size):
        names, size = {}, input_size
        for k, c in enumerate(spec.get("cells")):
            names.update({f"cell_{k}/{c.family.scope}/{name}": shape
                          for name, shape in c.family.variables(c, size).items()})
            size = c.output_size
        return names

    # --- Keras 3 side ---------------------------------------------------------------------
    def keras_cell(self, spec, **kwargs):
        if kwargs:
            raise UserError(f"{self.describe(spec)} with {', '.join(kwargs)}: set them per "
                            "level.")
        return keras_cells.StackedCell([c.family.keras_cell(c) for c in spec.get("cells")])

    def registered_twin(self, spec):
        return True

    def to_keras(self, spec, tf1):
        weights = []
        for k, c in enumerate(spec.get("cells")):
            prefix = f"cell_{k}/{c.family.scope}/"
            weights += c.family.to_keras(c, {name[len(prefix):]: value
                                             for name, value in tf1.items()
                                             if name.startswith(prefix)})
        return weights

    def to_tf1(self, spec, weights, gradients=False):
        out, i = {}, 0
        for k, c in enumerate(spec.get("cells")):
            count = len(c.family.to_keras(c, {name: np.zeros(shape, np.float32) for name, shape
                                              in c.family.variables(c, 3).items()}))
            out.update({f"cell_{k}/{c.family.scope}/{name}": value for name, value in
                        c.family.to_tf1(c, weights[i:i + count], gradients).items()})
            i += count
        return out

    # --- States ---------------------------------------------------------------------------
    def _orders(self, spec):
        levels = spec.get("cells")
        return levels, [len(levels) - 1, *range(len(levels) - 1)]

    def state_to_keras(self, spec, state):
        """The levels' Keras states, the top level's first (`StackedCell`)."""
        levels, order = self._orders(spec)
        return [s for k in order for s in levels[k].family.state_to_keras(levels[k], state[k])]

    def state_from_keras(self, spec, states):
        levels, order = self._orders(spec)
        per_level, i = {}, 0
        for k in order:
            count = cells.keras_state_count(levels[k])
            per_level[k] = levels[k].family.state_from_keras(levels[k], list(states[i:i + count]))
            i += count
        return tuple(per_level[k] for k in range(len(levels)))
