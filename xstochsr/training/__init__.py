"""Training the recurrent generator: data, objective, loop, configuration."""
