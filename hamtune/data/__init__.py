"""HAM10000 in its three public forms (+ ISIC 2018 and a synthetic default) -> one prepared cache."""
