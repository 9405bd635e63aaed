"""Float baselines the rules are compared with: backpropagation and last-layer-only SGD
(the results sweep, examples/sweeps/results.toml)."""
