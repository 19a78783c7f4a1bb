"""What the whole project agrees on, importable without TensorFlow (the commands define their flags
from it before TensorFlow loads)."""

# The TF migration guide's forward tolerance (validate_correctness): a conversion is verified when
# its largest difference from the TF1 graph is at most this.
TOLERANCE = 1e-5

# Activations whose definition is the same in tf-keras (TF1 cells) and Keras 3. `hard_sigmoid`
# is not: Keras 2's is clip(0.2x + 0.5), Keras 3's clip(x/6 + 0.5) (docs/migration.md).
ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear", "softsign", "elu")
