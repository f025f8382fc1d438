"""A sparse MILP built column by column and row by row, solved by HiGHS.

dcilab's integer programs (the elephants' optimum MLU in `te.optimum`, re-packing
reservations in `te.repack`, the admission bench's offline optimum) are all built the
same way: walk the routes, add a binary column per route or per wavelength of a hop, and
rows of a few non-zeros each, some of them filled in as later columns appear. `Milp` keeps
that bookkeeping (sparse triplets, row and column bounds, integrality) in one place and
hands it to `scipy.optimize.milp` (HiGHS); the models keep only their formulation.

Pure: no I/O; HiGHS's own time limit is the only clock.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult


def load_solver() -> None:
    """Import SciPy's solver now (0.7 s on a slow machine), not at the first solve: the
    controller calls this as it starts, so no admission waits for it; a client that only
    needs the reservation types never pays it."""
    importlib.import_module("scipy.optimize")
    importlib.import_module("scipy.sparse")


class Milp:
    """minimize cost·x  subject to  row_lower <= A x <= row_upper,  lower <= x <= upper,
    x integer where asked."""

    def __init__(self) -> None:
        self._cost: list[float] = []
        self._lower: list[float] = []
        self._upper: list[float] = []
        self._integer: list[bool] = []
        self._entries: tuple[list[int], list[int], list[float]] = ([], [], [])
        self._row_lower: list[float] = []
        self._row_upper: list[float] = []

    @property
    def columns(self) -> int:
        return len(self._cost)

    @property
    def rows(self) -> int:
        return len(self._row_lower)

    def column(self, cost: float = 0.0, lower: float = 0.0, upper: float = 1.0,
               integer: bool = True) -> int:
        """A new variable (binary by default); its index."""
        self._cost.append(cost)
        self._lower.append(lower)
        self._upper.append(upper)
        self._integer.append(integer)
        return len(self._cost) - 1

    def row(self, terms: Iterable[tuple[int, float]] = (), lower: float = -math.inf,
            upper: float = math.inf) -> int:
        """A new constraint  lower <= sum(value · x[column] for column, value in terms) <=
        upper; its index, for `term` to add to it later."""
        index = len(self._row_lower)
        self._row_lower.append(lower)
        self._row_upper.append(upper)
        for column, value in terms:
            self.term(index, column, value)
        return index

    def term(self, row: int, column: int, value: float) -> None:
        """value · x[column] joins row `row`."""
        rows, columns, values = self._entries
        rows.append(row)
        columns.append(column)
        values.append(value)

    def solve(self, time_limit_s: float | None = None, relax: bool = False,
              **options) -> OptimizeResult:
        """HiGHS's answer (`x`, `fun`, `status`, `mip_dual_bound`, ...). `relax`: the LP
        relaxation (every column continuous). Other keywords are HiGHS options for
        `scipy.optimize.milp` (e.g. mip_rel_gap)."""
        from scipy.optimize import Bounds, LinearConstraint, milp
        from scipy.sparse import coo_matrix
        n = self.columns
        matrix = coo_matrix((self._entries[2], self._entries[:2]), shape=(self.rows, n)).tocsr()
        constraints = [LinearConstraint(matrix, self._row_lower, self._row_upper)] \
            if self.rows else []
        options = {"disp": False, **options}
        if time_limit_s is not None:
            options["time_limit"] = time_limit_s
        integrality = np.zeros(n) if relax else np.array(self._integer, dtype=float)
        return milp(np.array(self._cost, dtype=float), constraints=constraints,
                    bounds=Bounds(np.array(self._lower, dtype=float),
                                  np.array(self._upper, dtype=float)),
                    integrality=integrality, options=options)


__all__ = ["Milp", "load_solver"]
