"""Regression testing of TensorFlow upgrades: drift rules, golden numbers, the canary and its
suite.
"""
