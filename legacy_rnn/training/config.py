"""How to train, whatever the model: the settings every program shares (`cli/programs.py`
defines a flag per field). No TensorFlow here: the flags are defined and checked before it loads.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train, whatever the model. Defaults are the MNIST seed's."""
    batch_size: int = 128
    training_iters: int = 100000  # examples, as in the seeds: steps = (training_iters - 1) // batch
    display_step: int = 10
    model_dir: str | None = None
    checkpoint_steps: int = 1000  # with a model_dir: save every this many steps (and at the end)
    init_checkpoint: str | None = None  # start from these weights (see checkpoints.py)
    eval_only: bool = False  # with init_checkpoint: evaluate it, train nothing
    export_dir: str | None = None  # after evaluating: a SavedModel of the inference graph here
    overwrite: bool = False  # replace a non-empty export_dir
    epochs: int = 0  # > 0: train this many epochs (replaces training_iters), validating each
