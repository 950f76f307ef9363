"""Classic clustering: features, exact chaining, batches and merge, safe output."""

from icas.cluster.pipeline import ClusterResult, Clusteror

__all__ = ["ClusterResult", "Clusteror"]
