"""Condition-map detectors (edges, lines, pose) and the maps the ControlNets take."""
