"""The cell zoo: every TF1 cell, wrapper and driver with its Keras 3 twin and weight mapping.

`cells.py` defines what a cell family provides and the table (`FAMILIES`) they register in; one
module per family (`simple`, `gru`, `gru_block`, `lstm`, `layer_norm`, `lstm_block`,
`layer_norm_lstm`, `cudnn`, `lstm_block_fused`, `ugrnn`, `nas`, `attention_cell`, `multi`)
registers itself on import;
`wrappers.py` does the same for wrappers with variables of their own (`projection`,
`embedding`);
`drivers.py` holds one class per TF1 driver; `blocks.py` runs any family through any driver and
builds the Keras 3 block that computes the same; `graphview.py` reads a `.meta` graph for the
families (their options, their ops).
"""
from legacy_rnn.zoo import (gru, gru_block, layer_norm, layer_norm_lstm, lstm,  # noqa: F401
                            lstm_block, nas, simple, ugrnn)
from legacy_rnn.zoo import cudnn, lstm_block_fused  # noqa: F401  (after lstm_block)
from legacy_rnn.zoo import attention_cell, embedding, multi, projection  # noqa: F401
from legacy_rnn.zoo.blocks import Block, Dropout, Level, keras_block, tf1_block
from legacy_rnn.zoo.cells import FAMILIES, CellSpec, canonical_cases
from legacy_rnn.zoo.wrappers import WRAPPERS, WrapperSpec

__all__ = ["Block", "CellSpec", "Dropout", "FAMILIES", "Level", "WRAPPERS", "WrapperSpec",
           "canonical_cases", "keras_block", "tf1_block"]
