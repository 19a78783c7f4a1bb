"""Conversion of any TF1 RNN checkpoint: discovery of its blocks, what its .meta graph says,
conversion to Keras 3 and back, and the commands `convert` and `inspect`.
"""
