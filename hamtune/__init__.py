"""hamtune: hyperparameter search for autoencoders and VAEs on HAM10000 skin lesions."""

__version__ = "0.1.0"
