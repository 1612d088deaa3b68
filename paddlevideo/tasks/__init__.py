"""Training, evaluation and export loops."""
