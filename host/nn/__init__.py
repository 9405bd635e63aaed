"""Layers in float and in fixed point."""
