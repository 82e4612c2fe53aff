"""Exported models: a trial's weights with everything needed to score new images (bundle), and scoring (score)."""
