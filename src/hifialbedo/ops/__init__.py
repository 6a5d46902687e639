"""Pure maths on arrays and tensors: colour spaces, spherical harmonics, geometry.

Every function here accepts NumPy arrays and, where it says so, torch tensors; nothing
here does I/O or keeps state.
"""
