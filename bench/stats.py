"""Percentiles for every benchmark report: one method (nearest rank, no
interpolation), so numbers from different scripts compare."""

import math
import statistics


def percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(values) -> dict:
    return {
        "median": statistics.median(values),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }
