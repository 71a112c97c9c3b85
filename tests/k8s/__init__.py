"""Operator integration tests on a real Kubernetes control plane."""
