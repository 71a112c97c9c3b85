"""Generators for the monitoring files the chart ships (rules, dashboards)."""
