"""The chat domain: models, rules and the ports the stores implement.

Nothing here imports Tornado, Dramatiq or a database driver (enforced by import-linter).
"""
