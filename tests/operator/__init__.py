"""Operator unit tests: pure builders, status and CRD; no cluster."""
