"""Whether a bundle's validation threshold separates anything: the F1-maximising threshold of a model that ranks
anomalies no better than normals is one that flags (almost) every image (recall 1.0 at a precision equal to
the prevalence), which scores well on F1 and says nothing. An export says so, in its log and its model card."""

from __future__ import annotations

import numpy as np

ALMOST_ALL = 0.95  # flagging this share of validation images with recall 1.0 means precision ~ prevalence


def check_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """What the threshold does on the validation images, and a warning (None if it separates something)."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    flagged = scores > threshold
    positives = int((labels == 1).sum())
    hits = int((flagged & (labels == 1)).sum())
    share = float(flagged.mean()) if len(scores) else 0.0
    recall = hits / positives if positives else float("nan")
    precision = hits / int(flagged.sum()) if flagged.any() else 0.0
    prevalence = positives / len(labels) if len(labels) else float("nan")
    warning = None
    if len(scores) and threshold <= float(scores.min()):
        warning = (
            f"the validation threshold {threshold:.4g} is at or below the lowest validation score "
            f"({float(scores.min()):.4g}): it flags every image (precision {precision:.3g} = the prevalence "
            f"{prevalence:.3g}), so a flag carries no information"
        )
    elif recall == 1.0 and share >= ALMOST_ALL:
        warning = (
            f"the validation threshold {threshold:.4g} flags {share:.0%} of the validation images (recall 1.0 at "
            f"precision {precision:.3g}, the prevalence being {prevalence:.3g}), so a flag carries almost no "
            "information"
        )
    plain = {"recall": recall, "precision": precision, "prevalence": prevalence}
    return {
        "validation_images": len(scores),
        "flagged_share": share,
        **{k: v if v == v else None for k, v in plain.items()},
        "warning": warning,
    }
