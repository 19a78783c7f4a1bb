"""The cell zoo: every TF1 cell, wrapper and driver with its Keras 3 twin and weight mapping.

`cells.py` defines what a cell family provides and the table (`FAMILIES`) they register in; one
module per family (`simple`, `gru`, `lstm`, `layer_norm`) registers itself on import; `blocks.py`
runs any of them through the TF1 drivers and builds the Keras 3 block that computes the same.
"""
from legacy_rnn.zoo import gru, layer_norm, lstm, simple  # noqa: F401  (each registers itself)
from legacy_rnn.zoo.blocks import Block, Dropout, Level, keras_block, tf1_block
from legacy_rnn.zoo.cells import FAMILIES, CellSpec

__all__ = ["Block", "CellSpec", "Dropout", "FAMILIES", "Level", "keras_block", "tf1_block"]
