"""The flags every program shares, and the body of every program's `main`.

A program defines its experiment's own flags (`Experiment.define_flags`) and the shared ones below,
each named after a field of the experiment's config or of `training.TrainConfig`, with the
program's seed defaults (so `--help` shows what it runs with). Flags exist only in the process of
the program that defines them: the library never reads them, and nothing is defined at import.
"""
import contextlib
import dataclasses
import warnings

from absl import flags, logging

from legacy_rnn.cli import interrupts
from legacy_rnn.training import loop as training
from legacy_rnn.training import serving, store


def positive_int(name, default, help_text, flag_values):
    holder = flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
    flags.register_validator(name, lambda v: v > 0, message=f"--{name} must be a positive integer.",
                             flag_values=flag_values)
    return holder


def non_negative_int(name, default, help_text, flag_values):
    holder = flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
    flags.register_validator(name, lambda v: v >= 0, message=f"--{name} must be 0 or more.",
                             flag_values=flag_values)
    return holder


def define_shared(experiment, flag_values=flags.FLAGS):
    """The flags every program has; returns their FlagHolders."""
    config, train, fv = experiment.config, experiment.train, flag_values
    holders = [
        positive_int("batch_size", train.batch_size, "Training batch size.", fv),
        positive_int("epochs", train.epochs, "Passes over the training split, each ended by "
                     "an evaluation on the validation split.", fv) if train.epochs else
        positive_int("training_iters", train.training_iters, "Training examples to draw, as in "
                     "the seeds: (training_iters - 1) // batch_size steps.", fv),
        positive_int("display_step", train.display_step,
                     "Log progress (and write summaries) every this many steps.", fv),
        flags.DEFINE_string("model_dir", None, "If set: TensorBoard summaries, checkpoints and "
                            "metrics.json go here.", flag_values=fv),
        positive_int("checkpoint_steps", train.checkpoint_steps, "With --model_dir: save a "
                     "checkpoint every this many steps (and at the end, and on SIGINT/SIGTERM). "
                     "Rerunning with the same --model_dir resumes from the latest one.", fv),
        flags.DEFINE_string("init_checkpoint", None, "Start from this checkpoint (a prefix, or a "
                            "directory with a `checkpoint` file): this project's, or one the "
                            "original tutorial script wrote.", flag_values=fv),
        flags.DEFINE_bool("eval_only", False, "With --init_checkpoint: evaluate its weights, "
                          "train nothing.", flag_values=fv),
        flags.DEFINE_string("export_dir", None, "After evaluating: write a SavedModel of the "
                            "inference graph here (signature serving_default: the placeholders "
                            "in, logits / probabilities / classes out).", flag_values=fv),
        flags.DEFINE_bool("overwrite", False, "Replace a non-empty --export_dir.",
                          flag_values=fv),
        flags.DEFINE_float("learning_rate", config.learning_rate, "Learning rate" + (
            "." if config.learning_rate else " (default: the model's own)."), flag_values=fv),
        non_negative_int("seed", config.seed, "Seeds the graph, the data order and any "
                         "generated data.", fv),
        non_negative_int("test_len", config.test_len, "Evaluate on the first test_len test "
                         "examples; 0 evaluates on the whole test split.", fv),
    ]
    flags.register_validator("learning_rate", lambda v: v is None or v > 0,
                             message="--learning_rate must be a positive number.", flag_values=fv)
    return holders


def define(experiment, flag_values=flags.FLAGS):
    """All of the program's flags: the shared ones and its experiment's own."""
    return define_shared(experiment, flag_values) + list(experiment.define_flags(flag_values))


def read(experiment, holders):
    """(config, TrainConfig) from the parsed flags."""
    values = {h.name: h.value for h in holders}
    config_fields = {f.name for f in dataclasses.fields(experiment.config)}
    train_fields = {f.name for f in dataclasses.fields(training.TrainConfig)}
    config = dataclasses.replace(experiment.config,
                                 **{k: v for k, v in values.items() if k in config_fields})
    train = dataclasses.replace(experiment.train,
                                **{k: v for k, v in values.items() if k in train_fields})
    return config, train


def run(experiment, holders, argv):
    """The body of each program's `main`: flags to configs, one library call, the result line.
    Errors are reported by `entry` (messages, exit statuses)."""
    if len(argv) > 1:
        from absl import app
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config, train = read(experiment, holders)
    preflight(train)
    start_tensorflow()
    metrics = experiment.run(config, train)
    logging.info("test_loss %.6f on %d examples, %d training steps in %.1f s (%.0f examples/s)",
                 metrics["test_loss"], metrics["test_examples"], metrics["global_step"],
                 metrics["train_seconds"], metrics["examples_per_sec"] or 0)
    print(experiment.result_line(metrics))
    return 0


def preflight(train):
    """What can be refused before TensorFlow loads (in the first second, not after its start-up):
    an --export_dir that is not empty (without --overwrite) or whose replacement would delete what
    --model_dir or --init_checkpoint hold; a --model_dir that cannot be created, or that another
    live run holds. `training.train_and_evaluate` checks them again (and takes the lock)."""
    serving.check_export_dir(train.export_dir, train.overwrite,
                             keep={"--model_dir": train.model_dir,
                                   "--init_checkpoint": train.init_checkpoint})
    if train.model_dir:
        store.prepare_model_dir(train.model_dir)
        with store.ModelDirLock(train.model_dir):
            pass


def start_tensorflow():
    """Imports TensorFlow (seconds) once the flags are checked, and quiets the deprecation
    notices of the TF1 API, which is the point of this project and would drown the output."""
    with interrupts.phase("starting up (importing TensorFlow)"):
        import tensorflow as tf
        interrupts.raise_swallowed()
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", message=r"`tf.nn.rnn_cell.* is deprecated")


@contextlib.contextmanager
def progress_lines_off():
    """absl's INFO lines (training progress) off inside, for tools that run tiny trainings whose
    progress says nothing. The logger's own level is restored afterwards, so a tool called
    in-process leaves the process's logging as it found it (`set_verbosity(get_verbosity())`
    would pin a NOTSET logger to WARNING)."""
    absl_logger = logging.get_absl_logger()
    level = absl_logger.level
    absl_logger.setLevel("WARNING")
    try:
        yield
    finally:
        absl_logger.setLevel(level)
