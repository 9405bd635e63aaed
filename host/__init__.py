"""onward: forward-only learning on microcontrollers, bit-exact with its Python reference."""

__version__ = "0.1.0"
