"""HAM10000 in its three public forms (+ ISIC 2018 and a synthetic default) -> one prepared cache."""

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024  # px a side of a model's input: prepare, train, export and score take one range
