"""Chime's core: the domain that the web app (webapp) and the engine (scheduler) both build on.

Models and the database, the use-cases (services), validation, the execution lifecycle, the schedule
maths (triggers, policy), the one module that owns RQ's keys and scripts (occurrence), settings,
time and logging helpers. It imports nothing from webapp or scheduler (see ARCHITECTURE.md and the
import-linter contract in .importlinter).
"""
