"""Optimizers and learning-rate schedules built from the OPTIMIZER config section."""
