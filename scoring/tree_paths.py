"""Per-feature contributions of a LightGBM model by path attribution (Saabas), fast.

Each leaf's contribution vector is the sum, along the path from the root, of how much each
split moved the tree's value; a row's contributions are the sum over trees of its leaves'
vectors. Like SHAP they add up exactly to the raw score (minus the trees' root values), but
they need only the leaf indices: ~20 us a row here, where LightGBM's TreeSHAP
(``pred_contrib=True``) took ~1.5 ms a row for a 300-tree model on this machine. The same
leaves also give the raw score (the sum of the leaf values), so one pass over the trees
yields both the score and its explanation.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any

import numpy as np
from lightgbm import basic as lightgbm_c  # the C API the Python wrapper itself calls
from scipy import sparse

try:  # the C routine behind ``csr_matrix @ dense``, called without scipy's Python around it
    from scipy.sparse._sparsetools import csr_matvecs
except ImportError:  # a scipy that moved it: the public product, same sums, ~2x the time
    csr_matvecs = None


class PathAttribution:
    def __init__(self, booster: Any) -> None:
        dump = booster.dump_model()
        self.features = len(dump["feature_names"])
        self.objective = str(dump.get("objective", ""))
        tables, self.offsets = [], []
        offset = 0
        for tree in dump["tree_info"]:
            leaves = tree["num_leaves"]
            table = np.zeros((leaves, self.features + 1))  # the last column: the leaf value
            root = tree["tree_structure"]
            _walk(root, _value(root), np.zeros(self.features + 1), table)
            tables.append(table)
            self.offsets.append(offset)
            offset += leaves
        self.table = np.vstack(tables)
        self.offsets_array = np.array(self.offsets)
        self.leaves = LeafIndices(booster, len(tables), self.features)

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        return self.explain(rows)[1]

    def explain(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The raw scores (log-odds for a binary model) and the ``(rows, features)``
        contributions, from one pass over the trees."""
        summed = _sum_leaves(self.table, self.leaves(rows) + self.offsets_array)
        return summed[:, -1], summed[:, :-1]


def _sum_leaves(table: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """Per row, the sum of the ``table`` rows its ``(rows, trees)`` leaves name, in tree order:
    a sparse 0/1 matrix of the leaves times the table. scipy's own product spent most of its
    time building the matrix and checking it (one row 58 us, 16 rows 169, 500 rows 2,499),
    the routine it calls 12, 88 and 2,179 us; gathering the rows and adding them, 25 us for
    one row but 260 for 16. Every batch size sums the same way, so a REST call's one row and
    the stream's batch give the same bits.

    >>> table = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]])
    >>> _sum_leaves(table, np.array([[0, 2], [1, 2]])).tolist()
    [[5.0, 50.0], [6.0, 60.0]]
    """
    count, trees = leaves.shape
    starts = np.arange(0, leaves.size + 1, trees, dtype=leaves.dtype)  # where each row begins
    ones = np.ones(leaves.size)
    if csr_matvecs is None:
        indicator = sparse.csr_matrix((ones, leaves.ravel(), starts), shape=(count, len(table)))
        return np.asarray(indicator @ table)
    summed = np.zeros((count, table.shape[1]))
    csr_matvecs(
        count, len(table), table.shape[1], starts, np.ascontiguousarray(leaves).ravel(), ones,
        np.ascontiguousarray(table).ravel(), summed.ravel(),
    )  # fmt: skip
    return summed


class LeafIndices:
    """The leaf each row reaches in each tree, ``(rows, trees)``, as
    ``booster.predict(rows, pred_leaf=True, num_threads=1)`` gives it, from LightGBM's C API
    directly. The wrapper rebuilds a predictor and parses its parameters on every call: one
    row cost 106 us through it here, 48 us through ``LGBM_BoosterPredictForMat`` and 26 us
    through the single-row "fast" predictor, which parses them once; a REST call scores one
    row or a few, and the stream pays the wrapper once a batch.

    The single-row predictor holds a shared lock on the booster while it lives (nothing may
    retrain that booster meanwhile), so it is made at the first single-row call and freed
    with this object; a lock keeps two threads from sharing its buffers."""

    def __init__(self, booster: Any, trees: int, features: int) -> None:
        self.booster, self.trees, self.features = booster, trees, features
        self.iterations = booster.best_iteration  # as ``predict`` and ``dump_model`` count
        self.parameters = lightgbm_c._c_str("num_threads=1")
        self._single: ctypes.c_void_p | None = None
        self._lock = threading.Lock()

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.features:
            raise ValueError(f"rows of {self.features} features expected, got {rows.shape}")
        out = np.empty(len(rows) * self.trees, dtype=np.float64)
        written = ctypes.c_int64(0)
        data = rows.ctypes.data_as(ctypes.c_void_p)
        result = out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        if len(rows) == 1:
            with self._lock:
                lightgbm_c._safe_call(
                    lightgbm_c._LIB.LGBM_BoosterPredictForMatSingleRowFast(
                        self._single_row(), data, ctypes.byref(written), result
                    )
                )
        elif len(rows):
            lightgbm_c._safe_call(
                lightgbm_c._LIB.LGBM_BoosterPredictForMat(
                    self.booster._handle,
                    data,
                    ctypes.c_int(lightgbm_c._C_API_DTYPE_FLOAT64),
                    ctypes.c_int32(len(rows)),
                    ctypes.c_int32(self.features),
                    ctypes.c_int(lightgbm_c._C_API_IS_ROW_MAJOR),
                    ctypes.c_int(lightgbm_c._C_API_PREDICT_LEAF_INDEX),
                    ctypes.c_int(0),
                    ctypes.c_int(self.iterations),
                    self.parameters,
                    ctypes.byref(written),
                    result,
                )
            )
        if written.value != len(out):
            raise RuntimeError(f"LightGBM gave {written.value} leaf indices, {len(out)} expected")
        return out.astype(np.int64).reshape(len(rows), self.trees)

    def _single_row(self) -> ctypes.c_void_p:
        if self._single is None:
            handle = ctypes.c_void_p()
            lightgbm_c._safe_call(
                lightgbm_c._LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                    self.booster._handle,
                    ctypes.c_int(lightgbm_c._C_API_PREDICT_LEAF_INDEX),
                    ctypes.c_int(0),
                    ctypes.c_int(self.iterations),
                    ctypes.c_int(lightgbm_c._C_API_DTYPE_FLOAT64),
                    ctypes.c_int32(self.features),
                    self.parameters,
                    ctypes.byref(handle),
                )
            )
            # freed before the booster: the finalizer holds the booster until it has run
            weakref.finalize(self, _free_single_row, handle, self.booster)
            self._single = handle
        return self._single


def _free_single_row(handle: ctypes.c_void_p, booster: Any) -> None:
    lightgbm_c._LIB.LGBM_FastConfigFree(handle)


def _value(node: dict) -> float:
    return float(node["leaf_value"] if "leaf_index" in node else node["internal_value"])


def _walk(node: dict, value: float, path: np.ndarray, table: np.ndarray) -> None:
    if "leaf_index" in node:
        table[node["leaf_index"]] = path
        table[node["leaf_index"], -1] = value
        return
    feature = node["split_feature"]
    for child in (node["left_child"], node["right_child"]):
        child_value = _value(child)
        step = path.copy()
        step[feature] += child_value - value
        _walk(child, child_value, step, table)
