"""The parts an anomaly score is made of, one entry each: what the evaluation computes for it (`term`, in
evaluate.score_batch), which way is anomalous, how a model card says it, and whether it has a per-pixel map.
A new part is one entry here plus its term in score_batch; train, export, maps and cards read it from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScorePart:
    name: str
    term: str  # the per-image value evaluate.score_batch computes
    similarity: bool  # higher = more alike, so the part is 1 - term
    words: str  # as a model card states it
    pixel_map: bool  # a mean over pixels: `hamtune score --maps` can show where it comes from
    rule: str  # exactly how it is computed, for whoever ports an exported program (its metadata states it)


PARTS: dict[str, ScorePart] = {
    part.name: part
    for part in (
        ScorePart("mse", "mse", False, "the mean squared reconstruction error (on [0, 1] pixels)", True, "mean squared error on [0,1]"),
        ScorePart(
            "ssim", "ssim", True, "one minus the SSIM of its reconstruction", True, "1 - SSIM (Gaussian window 11, sigma 1.5, valid region)"
        ),
        ScorePart(
            "msssim",
            "msssim",
            True,
            "one minus the multi-scale SSIM of its reconstruction",
            False,
            "1 - MS-SSIM (scales halved by 2x2 means while the side is >= 16, Wang et al. 2003 weights renormalised over them)",
        ),
        ScorePart(
            "gms",
            "gms",
            True,
            "one minus the gradient-magnitude similarity of its reconstruction",
            True,
            "1 - GMS (grey = channel mean, Prewitt 3x3 gradients, c = 170/255^2, valid region)",
        ),
        ScorePart(
            "latent",
            "latent",
            False,
            "the Mahalanobis distance of its code from the codes of the normal training images",
            False,
            "squared Mahalanobis distance of mu to latent_mean with latent_precision",
        ),
        ScorePart("elbo", "neg_elbo", False, "the negative ELBO", False, "the negative ELBO"),
    )
}
