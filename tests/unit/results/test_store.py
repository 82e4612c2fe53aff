"""The results store: what makes two trials' test metrics comparable."""

from __future__ import annotations


def test_only_trials_tested_on_the_same_images_and_labels_share_a_test_identity():
    from hamtune.results.store import test_identity

    data, isic = {"name": "ham", "fingerprint": "aa"}, {"name": "isic-test", "fingerprint": "bb"}
    base = {"protocol": "cancer", "split": "lesion", "split_seed": 0, "val_fraction": 0.15, "test_fraction": 0.15}
    same = test_identity(base, data, None)
    assert same == test_identity({**base, "lr": 1.0}, data, None)
    for change in ({"split_seed": 1}, {"test_fraction": 0.2}, {"protocol": "nevus"}):
        assert test_identity({**base, **change}, data, None)["test_fingerprint"] != same["test_fingerprint"]
    external = test_identity(base, data, isic)
    assert external["test_set"] == "isic-test (cancer)" and external["test_data_fingerprint"] == "bb"
    assert external == test_identity({**base, "split_seed": 7}, {"name": "other", "fingerprint": "cc"}, isic)
    assert external != test_identity({**base, "protocol": "nevus"}, data, isic)
