"""Row roles as a contract: every role's label is read back as that role with its name, the ranking's labels are
these, and a searched trial's label is empty (as tables and chosen.json have always shown it)."""

from __future__ import annotations

import pandas as pd
import pytest

from hamtune.results.rank import role
from hamtune.results.roles import Role, having, label, role_name, role_of


@pytest.mark.parametrize("kind", list(Role))
def test_every_role_reads_back_from_its_label_with_its_name(kind):
    text = label(kind, "pca-64")
    assert role_of(text) is kind
    assert role_name(text) == ("" if kind is Role.SEARCH else "pca-64")


def test_the_ranking_labels_each_kind_of_row_and_having_selects_them():
    trials = pd.DataFrame(
        {
            "kind": ["ae", "pca", "ensemble", "vae", "ae"],
            "model": [None, "pca-64", "ensemble-top3", None, None],
            "preset": [None, None, None, None, "seed-ae"],
        }
    )
    roles = role(trials)
    assert list(roles) == ["", "classical: pca-64", "ensemble: ensemble-top3", "", "baseline: seed-ae"]
    assert list(having(roles, Role.FLOOR)) == [False, True, False, False, False]
    assert list(having(roles, Role.SEARCH, Role.BASELINE)) == [True, False, False, True, True]
    assert role_of(None) is Role.SEARCH and role_of("something: else") is Role.SEARCH
