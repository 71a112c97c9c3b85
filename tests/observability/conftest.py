"""The multiprocess cluster fixtures, for the test that scrapes a running devcluster."""

from tests.multiprocess.conftest import backing, make_cluster

__all__ = ["backing", "make_cluster"]
