"""Outputs: run directories, statistics over seeds, figures and TensorBoard events."""
