"""Operator commands: CALLs evbus sends to stations on request, and their answers."""
