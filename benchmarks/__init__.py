"""wxqr benchmarks: ``python -m benchmarks`` prints a markdown report of ratios.

Every figure is measured in the same run against a baseline measured in that run (see
``python -m benchmarks --help`` for sections and sizes; ``--quick`` is a smoke run).
"""
