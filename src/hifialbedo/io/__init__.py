"""Reading and validating inputs, atomic writing, mesh and texture export."""
