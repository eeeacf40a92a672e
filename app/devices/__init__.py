"""Playout devices: the PCs at the station and in the villages, their tokens and health."""
