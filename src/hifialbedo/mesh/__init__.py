"""The face topology (vertices, UVs, triangles, regions, symmetry) and landmark fitting."""
