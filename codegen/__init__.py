"""Code generation: the model-specific C for one spec and one initialised model."""
