"""Modules imported when one of their attributes is first used, not when their importer is.

    tf = lazy.module("tensorflow")        # at the top of a module: nothing is imported yet
    tf.compat.v1.placeholder(...)         # imports TensorFlow here, once

With it the programs define, parse and check their flags, `--model_dir` and `--export_dir`
before TensorFlow's seconds of start-up, and refuse a bad one at once (`cli/entry.py`). A module
that uses it may not touch the lazy name at import time (a base class, a decorator, a default
value): that would import it there.
"""
import importlib


class _Module:
    __slots__ = ("_name",)

    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)

    def __setattr__(self, attr, value):
        raise AttributeError(f"{self._name} is imported lazily: set attributes on the module")

    def __repr__(self):
        return f"<lazily imported {self._name}>"


def module(name):
    """A stand-in for `import name` whose attributes import the module when first read."""
    return _Module(name)
