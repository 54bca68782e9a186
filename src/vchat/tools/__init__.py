"""Tools the model can call; one task per module."""
