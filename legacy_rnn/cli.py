"""Every flag of the three programs, their validators, and the thin `main` they share.

Flags are defined once, here. Each program sets its seed's defaults (`set_experiment_defaults`)
before absl parses the command line, so `--help` shows the values that program runs with.
"""
import sys
import warnings

import tensorflow as tf
from absl import app, flags, logging

from legacy_rnn import experiments, graphs, mnist_data, training
from legacy_rnn.errors import UserError

MNIST_EXPERIMENTS = ("mnist_rnn", "mnist_birnn")
TOY_EXPERIMENT = "toy_dynamic_rnn"
# Where a program's seed differs from the flag defaults below (which are the MNIST seed's).
EXPERIMENT_DEFAULTS = {
    "mnist_rnn": {},
    "mnist_birnn": {},
    TOY_EXPERIMENT: {"n_hidden": 64, "learning_rate": 0.01, "training_iters": 1000000},
}

_TRAIN, _MNIST, _TOY = (
    training.TrainConfig(), experiments.MnistConfig(), experiments.ToyConfig())

# Common to all three programs.
_N_HIDDEN = flags.DEFINE_integer("n_hidden", _MNIST.n_hidden, "LSTM units (per direction).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", _TRAIN.batch_size, "Training batch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", _MNIST.learning_rate,
                                    "Learning rate (Adam for MNIST, gradient descent for toy).")
_TRAINING_ITERS = flags.DEFINE_integer(
    "training_iters", _TRAIN.training_iters,
    "Training examples to draw, as in the seeds: (training_iters - 1) // batch_size steps.")
_DISPLAY_STEP = flags.DEFINE_integer("display_step", _TRAIN.display_step,
                                     "Log progress (and write summaries) every this many steps.")
_SEED = flags.DEFINE_integer("seed", _MNIST.seed,
                             "Seeds the graph, the data order and the toy generator.")
_RNN = flags.DEFINE_enum("rnn", _MNIST.rnn, graphs.RNN_APIS,
                         "static: static_rnn / static_bidirectional_rnn (the seeds); dynamic: "
                         "dynamic_rnn / bidirectional_dynamic_rnn. Same function, same variables.")
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "If set: TensorBoard summaries, checkpoints and metrics.json go here.")
_CHECKPOINT_STEPS = flags.DEFINE_integer(
    "checkpoint_steps", _TRAIN.checkpoint_steps,
    "With --model_dir: save a checkpoint every this many steps (and at the end, and on "
    "SIGINT/SIGTERM). Rerunning with the same --model_dir resumes from the latest one.")
_INIT_CHECKPOINT = flags.DEFINE_string(
    "init_checkpoint", None, "Start from this checkpoint (a prefix, or a directory with a "
    "`checkpoint` file): this project's, or one the original tutorial script wrote.")
_EVAL_ONLY = flags.DEFINE_bool("eval_only", False,
                               "With --init_checkpoint: evaluate its weights, train nothing.")
_TEST_LEN = flags.DEFINE_integer(
    "test_len", 0, "Evaluate on the first test_len test examples (the seeds used 128 MNIST "
    "images); 0 evaluates on the whole test split.")

# MNIST programs only.
_DATASET = flags.DEFINE_enum("dataset", _MNIST.dataset, mnist_data.DATASETS,
                             "Which MNIST-layout data set to train on.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Directory of the four MNIST IDX files (gzipped or not). If unset, the data "
    "comes from tensorflow-datasets.")
_TFDS_DATA_DIR = flags.DEFINE_string("tfds_data_dir", None,
                                     "tensorflow-datasets data directory (its default if unset).")
_VALIDATION_SIZE = flags.DEFINE_integer(
    "validation_size", _MNIST.validation_size,
    "Training images held out as the validation split, as TF1's read_data_sets did.")

# toy_dynamic_rnn only.
_SEQ_MAX_LEN = flags.DEFINE_integer("seq_max_len", _TOY.seq_max_len, "Longest toy sequence.")
_MIN_LEN = flags.DEFINE_integer("min_len", _TOY.min_len, "Shortest toy sequence.")
_MAX_VALUE = flags.DEFINE_integer("max_value", _TOY.max_value, "Toy values are integers in "
                                  "0..max_value, divided by max_value.")
_N_TRAIN = flags.DEFINE_integer("n_train", _TOY.n_train, "Toy training sequences.")
_N_TEST = flags.DEFINE_integer("n_test", _TOY.n_test, "Toy test sequences.")

MNIST_ONLY_FLAGS = ("dataset", "data_dir", "tfds_data_dir", "validation_size")
TOY_ONLY_FLAGS = ("seq_max_len", "min_len", "max_value", "n_train", "n_test")

for _name in ("n_hidden", "batch_size", "training_iters", "display_step", "checkpoint_steps",
              "seq_max_len",
              "min_len", "max_value", "n_train", "n_test"):
    flags.register_validator(_name, lambda v: v > 0, message=f"--{_name} must be a positive integer.")
for _name in ("test_len", "validation_size", "seed"):
    flags.register_validator(_name, lambda v: v >= 0, message=f"--{_name} must be 0 or more.")
flags.register_validator("learning_rate", lambda v: v > 0,
                         message="--learning_rate must be a positive number.")
flags.register_multi_flags_validator(
    ["min_len", "seq_max_len"], lambda f: f["min_len"] <= f["seq_max_len"],
    message="--min_len must not exceed --seq_max_len.")
flags.register_multi_flags_validator(
    ["max_value", "seq_max_len"], lambda f: f["max_value"] >= f["seq_max_len"],
    message="--max_value must be at least --seq_max_len, or a linear run of the longest length "
            "does not fit in 0..max_value.")
flags.register_multi_flags_validator(
    ["data_dir", "tfds_data_dir"], lambda f: not (f["data_dir"] and f["tfds_data_dir"]),
    message="--data_dir (IDX files) and --tfds_data_dir (tensorflow-datasets) name two different "
            "data sources; pass one of them.")


def set_experiment_defaults(experiment):
    for name, value in EXPERIMENT_DEFAULTS[experiment].items():
        flags.FLAGS.set_default(name, value)


def train_config():
    return training.TrainConfig(batch_size=_BATCH_SIZE.value,
                                training_iters=_TRAINING_ITERS.value,
                                display_step=_DISPLAY_STEP.value, model_dir=_MODEL_DIR.value,
                                checkpoint_steps=_CHECKPOINT_STEPS.value,
                                init_checkpoint=_INIT_CHECKPOINT.value,
                                eval_only=_EVAL_ONLY.value)


def mnist_config(bidirectional):
    return experiments.MnistConfig(
        bidirectional=bidirectional, n_hidden=_N_HIDDEN.value, rnn=_RNN.value,
        learning_rate=_LEARNING_RATE.value, seed=_SEED.value, dataset=_DATASET.value,
        data_dir=_DATA_DIR.value, tfds_data_dir=_TFDS_DATA_DIR.value,
        validation_size=_VALIDATION_SIZE.value, test_len=_TEST_LEN.value)


def toy_config():
    return experiments.ToyConfig(
        n_hidden=_N_HIDDEN.value, rnn=_RNN.value, learning_rate=_LEARNING_RATE.value,
        seed=_SEED.value, seq_max_len=_SEQ_MAX_LEN.value, min_len=_MIN_LEN.value,
        max_value=_MAX_VALUE.value, n_train=_N_TRAIN.value, n_test=_N_TEST.value,
        test_len=_TEST_LEN.value)


def _check_flags_apply(experiment):
    foreign = TOY_ONLY_FLAGS if experiment in MNIST_EXPERIMENTS else MNIST_ONLY_FLAGS
    given = [f"--{name}" for name in foreign if flags.FLAGS[name].present]
    if given:
        owner = "toy_dynamic_rnn" if experiment in MNIST_EXPERIMENTS else "the MNIST programs"
        them = "it" if len(given) == 1 else "them"
        raise UserError(f"{experiment} does not use {', '.join(given)}: only {owner} reads "
                        f"{them}. Remove {them}.")


def run_experiment(experiment, argv):
    """The body of each program's `main`: flags to configs, one library call, an exit status."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        _check_flags_apply(experiment)
        if experiment == TOY_EXPERIMENT:
            metrics = experiments.run_toy(toy_config(), train_config())
        else:
            metrics = experiments.run_mnist(mnist_config(experiment == "mnist_birnn"),
                                            train_config())
    except UserError as e:
        print(f"{experiment}: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    logging.info("test_loss %.6f on %d examples, %d training steps in %.1f s (%.0f examples/s)",
                 metrics["test_loss"], metrics["test_examples"], metrics["global_step"],
                 metrics["train_seconds"], metrics["examples_per_sec"] or 0)
    print(f"test_accuracy: {metrics['test_accuracy']:.4f}")
    return 0


def quiet_tf1_notices():
    """For programs: the point of this project is the deprecated TF1 API, and its deprecation
    notices would drown the output."""
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", message=r"`tf.nn.rnn_cell.* is deprecated")


def program(experiment):
    """Runs `experiment` as a command-line program (the `__main__` of each program module)."""
    set_experiment_defaults(experiment)
    quiet_tf1_notices()
    app.run(lambda argv: run_experiment(experiment, argv))
