"""The memory pool's allocator core under a simulated churn, replayed as
``forgeflow-stress pool`` replays it (see :func:`simulate_churn`)."""

from ._native import simulate_churn

__all__ = ["simulate_churn"]
