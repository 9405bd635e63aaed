"""Photonic emulation: MZI meshes (mzi.py, mesh.py) with the flaws of real chips, behind a chip that only takes
phase codes and gives detector codes (device.py), for forward-only training in situ."""
