"""Training: the loop, checkpoints of the experiments, and serving exports.
"""
