import os
import sys

import pytest
from absl import flags

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One TensorFlow thread per test process: the suite runs one worker per core (pytest-xdist), and
# each worker's TensorFlow would otherwise start a thread per core too, four threads fighting for
# two cores. Numbers do not change with it (the golden check is exact under 1 and 2 threads).
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import legacy_rnn  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

# The experiments' graphs switch TF op determinism on for the whole process; switching it on first
# makes every test see the same process state whatever ran before it on its worker.
import tensorflow as tf  # noqa: E402

tf.config.experimental.enable_op_determinism()

# Library code is called directly; program flags are defined on their own FlagValues in tests.
flags.FLAGS.mark_as_parsed()


@pytest.fixture
def idx_dir(tmp_path):
    """A directory with small valid MNIST-layout IDX files (60 train, 20 test images)."""
    import idx_files
    idx_files.write_mnist_dir(tmp_path, n_train=60, n_test=20, seed=0)
    return tmp_path
