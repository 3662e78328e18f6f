"""Downscaling methods: the recurrent generator, baselines, and the model registry."""
