"""Data: MNIST-scale generation (bit-exact, checksummed), loaders, STL-10.

The importable code lives here; the top-level ``datasets/`` folder is the data root.
"""
