"""Chime scheduling core: schedule maths and retry/misfire policy."""
