"""Training one config (loop), scoring images (evaluate), and the metrics both report."""
