"""Lists what a TF1 checkpoint holds: its recurrent blocks and a guess for every other variable.

    python -m legacy_rnn.inspect CKPT [--json]
    python -m legacy_rnn.inspect CKPT --graph --outputs=NAME[,NAME] [--json]

CKPT is a checkpoint prefix or a directory with a `checkpoint` file. For each recurrent block:
its structure (cell type, units, input size, peepholes, projection, stack depth, direction), its
variable scope and variables; then every other variable with what it probably is. With
`--graph`: the `.meta` graph from the outputs back to the inputs as a whole-model conversion
(`convert --outputs`) would walk it: the inputs, the blocks on the way, the ops it translates
and every op it would refuse, with its path (`legacy_rnn/conversion/graph_preview.py`).
"""
import json
import sys

from absl import app, flags

from legacy_rnn import lazy
from legacy_rnn.cli import programs
from legacy_rnn.training import checkpoints

# Loaded when a checkpoint is read: the flags are checked first (legacy_rnn/lazy.py).
blockwise = lazy.module("legacy_rnn.conversion.blockwise")
graph_preview = lazy.module("legacy_rnn.conversion.graph_preview")


def define_flags(flag_values=flags.FLAGS):
    return {"json": flags.DEFINE_bool("json", False, "Print JSON instead of text.",
                                      flag_values=flag_values),
            "graph": flags.DEFINE_bool("graph", False, "Show the .meta graph from --outputs "
                                       "back to the inputs as convert --outputs would walk it.",
                                       flag_values=flag_values),
            "outputs": flags.DEFINE_list("outputs", None, "With --graph: the output tensors "
                                         "(as convert --outputs takes them).",
                                         flag_values=flag_values)}


def describe(checkpoint):
    """The report `inspect` prints: read as `convert` reads it (the `.meta` graph deciding the
    families, the driver and the options where there is one)."""
    prefix, meta, others, read, old_names = blockwise.read_blocks(checkpoint)
    shapes = checkpoints.list_variables(prefix)
    return {"checkpoint": prefix, "variables": len(shapes), "meta": meta,
            "old_names": old_names,
            "blocks": [{"scope": b.prefix, "structure": b.describe(),
                        "direction": b.direction, "driver": b.runner.tf1_name,
                        "depth": len(b.levels), "options": options,
                        "input_size": f.input_size, "output_size": f.block.output_size,
                        "cells": [{"layer": name, "cell": level.cell.describe(),
                                   "units": level.cell.units,
                                   "peepholes": bool(level.cell.get("use_peepholes")),
                                   "projection": level.cell.get("num_proj"), "scope": prefix}
                                  for name, level, prefix in b.cells()],
                        "wrappers": [{"layer": name, "wrapper": spec.describe("..."),
                                      "scope": prefix}
                                     for name, spec, prefix, _, _ in b.wrapped()],
                        "variables": f.variables} for f, b, options in read],
            "other_variables": others}


def main(holders, argv):
    if len(argv) != 2:
        raise app.UsageError("Pass one checkpoint: python -m legacy_rnn.inspect CKPT")
    if holders["graph"].value != bool(holders["outputs"].value):
        raise app.UsageError("--graph and --outputs=NAME[,NAME] go together: the graph is "
                             "walked from the outputs back to the inputs.")
    programs.start_tensorflow()
    if holders["graph"].value:
        report = graph_preview.preview(argv[1], holders["outputs"].value)
        if holders["json"].value:
            json.dump(report, sys.stdout, indent=2)
            print()
        else:
            graph_preview.print_preview(report, sys.stdout)
        return 0
    report = describe(argv[1])
    if holders["json"].value:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print(f"{report['checkpoint']}: {report['variables']} variables")
    if report["old_names"]:
        print(f"  {len(report['old_names'])} recurrent variables are saved under pre-TF-1.2 names "
              "(read here under today's; `python -m legacy_rnn.upgrade` writes a copy under "
              "them for TF1 code to restore)")
    print(f"\n{len(report['blocks'])} recurrent block(s):")
    for b in report["blocks"]:
        print(f"  {b['scope']}/  {b['direction']}, {b['depth']} level(s), input {b['input_size']}, "
              f"output {b['output_size']}")
        print(f"    {b['structure']}")
        for cell in b["cells"]:
            extra = "".join([", peepholes" if cell["peepholes"] else "",
                             f", projection {cell['projection']}" if cell["projection"] else ""])
            print(f"    {cell['layer']}: {cell['cell']}{extra}  ({cell['scope']}/...)")
        for name, option in sorted(b["options"].items()):
            print(f"    {name} = {option['value']!r} ({option['source']})")
    slots = [v for v in report["other_variables"] if v["guess"].startswith("optimizer state")]
    rest = [v for v in report["other_variables"] if v not in slots]
    print(f"\n{len(report['other_variables'])} other variable(s):")
    for v in rest:
        print(f"  {v['name']} {v['shape']}: {v['guess']}")
    if slots:
        kinds = sorted({v["name"].rsplit("/", 1)[-1] for v in slots})
        print(f"  ... and {len(slots)} optimizer-state variables ({', '.join(kinds)}) of the "
              "variables above (--json lists them)")
    return 0

