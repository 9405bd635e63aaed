"""Float baselines the rules are compared with: backpropagation and last-layer-only SGD (bench/results.py)."""
