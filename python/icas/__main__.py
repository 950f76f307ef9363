import sys

from icas.cli import cluster_main

sys.exit(cluster_main())
