"""Classic clustering: features, exact chaining, batches and merge, safe output."""

from icas.cluster.pipeline import Clusteror, ClusterResult

__all__ = ["ClusterResult", "Clusteror"]
