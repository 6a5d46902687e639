"""Learned networks. Weights load only on an explicit call, from installed packages."""
