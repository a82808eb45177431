"""Searches run before fitting: the learning rate (lr) and the largest batch that fits (batch_size)."""
