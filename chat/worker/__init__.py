"""Dramatiq workers: archive conversation logs, sweep for forgotten ones, apply retention."""
