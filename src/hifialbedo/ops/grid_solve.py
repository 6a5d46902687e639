"""Direct solves of sparse symmetric positive definite systems whose unknowns sit on a 2-D grid.

The systems of the detail normals (``inverse.detail_normals``) couple each texel to its four
neighbours. A sparse LU's cost is set by the order of elimination: SciPy's default (COLAMD on
the columns, partial pivoting) takes about 0.27 s on the 42,000 texels of a 256 grid; the
*nested dissection* order of the grid (George, 1973: split the texels by a line of texels,
order both halves first, recursively, and the separating line last) with symmetric
elimination and no pivoting (the matrix is SPD) takes about 0.13 s for the same solution
(equal to 1e-12 relative).

>>> order = nested_dissection_order(np.array([0, 0, 0]), np.array([0, 1, 2]), leaf=1)
>>> order.tolist()  # the middle texel separates the other two: it comes last
[0, 2, 1]
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu


def nested_dissection_order(rows: np.ndarray, cols: np.ndarray, *, leaf: int = 16) -> np.ndarray:
    """Elimination order ``(n,)`` (a permutation of ``arange(n)``) of unknowns at integer grid
    positions ``rows``, ``cols`` ``(n,)`` coupled to their 4-neighbours: each part is split
    at the median row or column (the longer extent), the separator line ordered after both
    halves; parts of at most ``leaf`` unknowns keep their order."""
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    order: list[np.ndarray] = []
    # An explicit stack, in reverse (separator, high half, low half), gives the order
    # low half, high half, separator at every level without recursion.
    stack: list[tuple[str, np.ndarray]] = [("split", np.arange(rows.size))]
    while stack:
        kind, idx = stack.pop()
        if kind == "emit" or idx.size <= leaf:
            order.append(idx)
            continue
        r, c = rows[idx], cols[idx]
        along = r if np.ptp(r) >= np.ptp(c) else c
        mid = int(np.median(along))
        stack.append(("emit", idx[along == mid]))
        stack.append(("split", idx[along > mid]))
        stack.append(("split", idx[along < mid]))
    return np.concatenate(order) if order else np.zeros(0, np.int64)


def solve_spd_ordered(matrix: sparse.spmatrix, rhs: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """x ``(n,)`` with ``matrix @ x = rhs`` for an SPD ``matrix`` ``(n, n)`` whose unknowns are
    already in a good elimination order (``nested_dissection_order``): eliminated in that
    order, symmetrically, without pivoting, in ``dtype`` (float32 factors a quarter faster;
    its solution is good to about 1e-4 relative on a well-scaled system)."""
    lu = splu(
        sparse.csc_matrix(matrix, dtype=dtype), permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )
    return lu.solve(np.asarray(rhs, dtype))


__all__ = ["nested_dissection_order", "solve_spd_ordered"]
