"""Perception tools: captions, questions, detection, segmentation, depth, backgrounds."""
