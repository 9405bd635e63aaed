"""Targets: where firmware runs (native process, QEMU board, real board over a serial port)."""
