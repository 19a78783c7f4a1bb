"""Converts TF1 RNN checkpoints to Keras 3, and Keras 3 recurrent models back to TF1.

    python -m legacy_rnn.convert --checkpoint=CKPT --output=DIR            # any checkpoint
    python -m legacy_rnn.convert --checkpoint=CKPT --outputs=logits:0 --output=MODEL.keras
    python -m legacy_rnn.convert --checkpoint=CKPT --model=mnist_birnn --output=OUT.keras
    python -m legacy_rnn.convert --to=tf1 --input=MODEL.keras --output=PREFIX [--scope=...]

Without --model (block mode), every recurrent block of the checkpoint becomes `DIR/NAME.keras`
(inputs `[x [batch, time, input], seqlen [batch] int32]`, the output sequence with zeros past each
length, as the TF1 driver returns it) and `DIR/blocks.json` says what each is, where each option
came from and how it was verified (`legacy_rnn/conversion.py`).

With --outputs (whole-model mode), the `.meta` graph from the named outputs back to its
placeholders becomes one Keras 3 model, its recurrent blocks converted as in block mode and every
other op translated (`legacy_rnn/conversion/whole.py`), checked end to end against the graph.

With --model, the checkpoint is one of this project's experiments (or the tutorial scripts' own):
PREFIX is a checkpoint prefix or a directory with a `checkpoint` file; this project's checkpoints
and the original tutorial scripts' (unnamed output `Variable`, `Variable_1`) are both accepted.
n_hidden is read from the variable shapes. The result loads anywhere with
`keras.saving.load_model(OUT)`: MNIST models take float32 `[batch, 28, 28]` in [0, 1] and return
logits `[batch, 10]`; the toy model takes `[x [batch, time, 1], seqlen [batch] int32]` and
returns logits `[batch, 2]`.
"""
import json
import os
import sys

from absl import app, flags

from legacy_rnn import experiments, facts, lazy
from legacy_rnn.cli import interrupts, programs
from legacy_rnn.training import checkpoints
from legacy_rnn.training import serving
from legacy_rnn.errors import UserError

# Loaded when a conversion runs: the flags and paths are checked first (legacy_rnn/lazy.py).
conversion = lazy.module("legacy_rnn.conversion.blockwise")


def convert_checkpoint(checkpoint, model_name, output, overwrite=False):
    """Writes the Keras twin of the checkpoint to `output`; returns the config it holds."""
    if not output.endswith(".keras"):
        raise UserError(f"--output={output} must end in .keras (the Keras 3 file format).")
    if os.path.exists(output) and not overwrite:
        raise UserError(f"{output} exists. Choose another --output, or pass --overwrite.")
    experiment = experiments.get(model_name)
    with interrupts.phase(f"reading {checkpoint}"):
        tf1_weights, config = checkpoints.read_weights(
            checkpoint, experiment, candidates=experiments.EXPERIMENTS.values())
    with interrupts.phase(f"writing {output}"):
        save_atomically(experiment.to_keras(config, tf1_weights), output)
    return config


def save_atomically(model, output):
    """Saves to a temporary file beside `output`, then renames: never a half-written `output`."""
    directory, name = os.path.split(os.path.abspath(output))
    tmp = os.path.join(directory, f".{name}.partial.keras")
    try:
        model.save(tmp)
        os.replace(tmp, output)
    except OSError as e:
        raise UserError(f"Cannot write {output} ({e.strerror or e}). Choose a writable --output "
                        "with free space; nothing was written.") from None
    finally:  # a failure or a signal leaves no partial file behind
        if os.path.exists(tmp):
            os.remove(tmp)


def define_flags(flag_values=flags.FLAGS):
    fv = flag_values
    return {
        "checkpoint": flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or directory.",
                                          flag_values=fv),
        "model": flags.DEFINE_enum("model", None, list(experiments.EXPERIMENTS), "Which "
                                   "experiment the checkpoint holds; without it, every recurrent "
                                   "block is converted (block mode).", flag_values=fv),
        "output": flags.DEFINE_string("output", None, "The .keras file (--model), the directory "
                                      "(block mode), or the checkpoint prefix (--to=tf1) to "
                                      "write.", flag_values=fv),
        "overwrite": flags.DEFINE_bool("overwrite", False, "Replace --output if it exists.",
                                       flag_values=fv),
        "export_dir": flags.DEFINE_string("export_dir", None, "With --model: also write the "
                                          "Keras 3 twin as a SavedModel here, with the signature "
                                          "the program's --export_dir has. With --outputs: the "
                                          "translated model, one input per placeholder and one "
                                          "output per --outputs name, checked against the graph "
                                          "before it is kept.", flag_values=fv),
        "force": flags.DEFINE_bool("force", False, "Block mode: write a block whose verification "
                                   f"failed (difference above {facts.TOLERANCE:g}) too.",
                                   flag_values=fv),
        "forget_bias": flags.DEFINE_float("forget_bias", None, "Block mode, without a .meta: the "
                                          "LSTM cells' forget_bias (TF1's default: 1.0).",
                                          flag_values=fv),
        "cell_clip": flags.DEFINE_float("cell_clip", None, "Block mode, without a .meta: "
                                        "LSTMCell's cell_clip (default: none).", flag_values=fv),
        "proj_clip": flags.DEFINE_float("proj_clip", None, "Block mode, without a .meta: "
                                        "LSTMCell's proj_clip (default: none).", flag_values=fv),
        "activation": flags.DEFINE_enum("activation", None, list(facts.ACTIVATIONS), "Block "
                                        "mode, without a .meta: the cells' activation (default: "
                                        "tanh).", flag_values=fv),
        "attn_length": flags.DEFINE_integer("attn_length", None, "Block mode, without a .meta: "
                                            "an AttentionCellWrapper's attn_length (no "
                                            "default: it is in no variable).", flag_values=fv),
        "outputs": flags.DEFINE_list("outputs", None, "Whole-model mode: the output tensors of "
                                     "the checkpoint's .meta graph (logits:0,...) to translate, "
                                     "with everything they depend on, into one Keras 3 model "
                                     "(--output=MODEL.keras).", flag_values=fv),
        "inputs_npz": flags.DEFINE_string("inputs_npz", None, "Whole-model mode: the inputs to "
                                          "check the model on ({placeholder name: array}; "
                                          "default: generated from what the graph allows).",
                                          flag_values=fv),
        "to": flags.DEFINE_enum("to", "keras", ["keras", "tf1"], "Direction: keras (from a TF1 "
                                "checkpoint) or tf1 (from a .keras model).", flag_values=fv),
        "input": flags.DEFINE_string("input", None, "--to=tf1: the .keras model to convert.",
                                     flag_values=fv),
        "scope": flags.DEFINE_string("scope", None, "--to=tf1: the variable scope of the block "
                                     "(default: the driver's, e.g. rnn or bidirectional_rnn).",
                                     flag_values=fv),
        "basic_cells": flags.DEFINE_bool("basic_cells", False, "--to=tf1: write Keras LSTM "
                                         "layers as BasicLSTMCell (basic_lstm_cell/...) instead "
                                         "of LSTMCell (lstm_cell/...).", flag_values=fv),
        "driver": flags.DEFINE_enum("driver", "dynamic", ["static", "dynamic"], "--to=tf1, "
                                    "stacked bidirectional blocks: which contrib driver's names "
                                    "to write.", flag_values=fv),
    }


def main(holders, argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    value = {name: holder.value for name, holder in holders.items()}
    if value["output"] is None:
        raise app.UsageError("--output is required.")
    if value["to"] == "tf1":
        if value["input"] is None:
            raise app.UsageError("--to=tf1 converts --input=MODEL.keras; pass it.")
        programs.start_tensorflow()
        names, block = conversion.to_tf1_checkpoint(
            value["input"], value["output"], value["scope"], value["basic_cells"],
            value["driver"], value["overwrite"])
        print(f"wrote {value['output']}: {block.describe()}")
        for name, shape in sorted(names.items()):
            print(f"  {name} {list(shape)}")
        return 0
    if value["checkpoint"] is None:
        raise app.UsageError("--checkpoint is required.")
    if value["outputs"]:
        if value["model"] is not None:
            raise app.UsageError("--outputs translates the .meta graph, --model rebuilds one of "
                                 "this project's experiments: pass one of them.")
        if not value["output"].endswith(".keras"):
            raise UserError(f"--output={value['output']} must end in .keras: --outputs writes "
                            "one Keras 3 model.")
        if os.path.exists(value["output"]) and not value["overwrite"]:
            raise UserError(f"{value['output']} exists. Choose another --output, or pass "
                            "--overwrite.")
        serving.check_export_dir(value["export_dir"], value["overwrite"], keep={
            "--output": value["output"], "--checkpoint": value["checkpoint"]})
        programs.start_tensorflow()
        return _whole(value)
    if value["model"] is None:
        programs.start_tensorflow()
        return _blocks(value)
    serving.check_export_dir(value["export_dir"], value["overwrite"],
                             keep={"--output": value["output"], "--checkpoint": value["checkpoint"]})
    programs.start_tensorflow()
    config = convert_checkpoint(value["checkpoint"], value["model"], value["output"],
                                value["overwrite"])
    experiment = experiments.get(value["model"])
    if value["export_dir"]:
        import keras
        with interrupts.phase(f"exporting the Keras 3 twin to {value['export_dir']}"):
            serving.export_keras(keras.saving.load_model(value["output"]),
                                 experiment.serving_specs(config), experiment.keras_call,
                                 value["export_dir"], value["overwrite"], experiment.head)
        print(f"exported the Keras 3 twin to {value['export_dir']}")
    print(f"wrote {value['output']}: {experiment.name}, n_hidden {config.n_hidden}, "
          f"{experiment.input_size(config)} inputs per step, "
          f"{experiment.output_size(config)} outputs")
    return 0


def _whole(value):
    from legacy_rnn.conversion import whole
    with interrupts.phase(f"translating {value['checkpoint']}"):
        result = whole.to_keras_model(value["checkpoint"], value["outputs"],
                                      value["inputs_npz"])
    for r in result.blocks:
        print(f"block {r.block.prefix}/: {r.block.describe()}; largest difference "
              f"{r.largest_difference:.2e} against {r.verified_against}")
    ops = ", ".join(f"{k} x{n}" for k, n in sorted(result.translated.items()))
    print(f"translated ops: {ops}")
    print(f"variables: {', '.join(result.variables) or 'none'}")
    for note in result.neutralised:
        print(f"neutralised: {note}")
    print(f"inputs: {'; '.join(f'{k} {v}' for k, v in result.inputs.items())}")
    print(f"largest difference against the graph: outputs {result.forward_difference:.2e}, "
          f"gradients {result.gradient_difference:.2e} (tolerance {facts.TOLERANCE:g})")
    if not result.ok:
        print("convert: the translated model does not compute what the graph computes; nothing "
              "was written. Please report the graph's ops above (a translation this tool got "
              "wrong), or name earlier --outputs to find the op where they part.",
              file=sys.stderr)
        return 1
    with interrupts.phase(f"writing {value['output']}"):
        whole.write(result, value["checkpoint"], value["outputs"], value["output"])
    print(f"wrote {value['output']} and {value['output']}.json (load it after `import "
          "legacy_rnn.keras_graph`)")
    if value["export_dir"]:
        with interrupts.phase(f"exporting the model to {value['export_dir']}"):
            served = whole.export(result, value["outputs"], value["export_dir"],
                                  value["overwrite"])
        print(f"exported {value['export_dir']} (signature {serving.SIGNATURE}: inputs "
              f"{', '.join(t.name for t in result.model.inputs)}; its outputs "
              f"{served:.2e} from the graph's)")
    return 0


def _blocks(value):
    given = {name: value[name] for name in conversion.OPTIONS}
    results, others = conversion.to_keras_blocks(value["checkpoint"], value["output"],
                                                 value["overwrite"], value["force"], given)
    for r in results:
        print(f"{r.status:>9s}  {os.path.join(value['output'], r.file)}: {r.block.describe()}, "
              f"input {r.found.input_size}")
        for name, option in sorted(r.options.items()):
            print(f"           {name} = {option['value']!r} ({option['source']})")
        print(f"           largest difference {r.largest_difference:.2e} against "
              f"{r.verified_against} (tolerance {conversion.TOLERANCE:g})")
        for note in r.neutralised:
            print(f"           neutralised: {note}")
        if r.assumed:
            print(f"           ASSUMED, not read from a graph: {', '.join(r.assumed)}. The check "
                  "ran this project's rebuild with those values: it cannot tell whether the "
                  "original used others. Keep the .meta beside the checkpoint to check against "
                  "the original graph.", file=sys.stderr)
    with open(os.path.join(value["output"], "blocks.json")) as f:
        decoders = json.load(f)["decoders"]
    for d in decoders:
        where = os.path.join(value["output"], d["file"]) if d["ok"] else "failed: not written"
        print(f"{'written' if d['ok'] else 'failed':>9s}  {where}: {d['decoder']}")
        for name, option in sorted(d["options"].items()):
            print(f"           {name} = {option['value']!r} ({option['source']})")
        print(f"           largest difference {d['largest_difference']:.2e} against "
              f"{d['verified_against']} (tolerance {d['tolerance']:g})")
    others = [o for o in others if not o["guess"].startswith("the attention decoder in")]
    print(f"{len(others)} other variables (dense layers, embeddings, optimizer state, ...) are "
          f"listed in {os.path.join(value['output'], 'blocks.json')}")
    failed = [r for r in results if not r.ok] + [d for d in decoders if not d["ok"]]
    if any(not d["ok"] for d in decoders):
        print("convert: the attention decoder's twin does not compute the graph's logits; its "
              "files were not written.", file=sys.stderr)
        return 1
    if failed:
        print(f"convert: {len(failed)} block(s) failed verification: "
              f"{', '.join(r.block.prefix for r in failed)}. Their options may differ from what "
              "was read (pass them as flags), or the graph applies dropout or other ops the "
              "checkpoint cannot show; --force writes them anyway.", file=sys.stderr)
        return 1
    return 0

