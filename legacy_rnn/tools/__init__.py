"""Benchmarks and the backend check (Keras 3 on JAX / PyTorch).
"""
