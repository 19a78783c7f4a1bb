"""TF1-compat graph-mode port of the classic TensorFlow RNN tutorials.

`tf.compat.v1.nn.rnn_cell.BasicLSTMCell` exists only in tf-keras (Keras 2), and TensorFlow routes
`tf.keras` / `tf.compat.v1.nn.rnn_cell` to tf-keras only when TF_USE_LEGACY_KERAS is set before
TensorFlow is first imported. Setting it here keeps every entry point of the package working;
`import keras` still gives Keras 3.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.1.0"
