"""Helpers shared by the test folders."""
from __future__ import annotations

# Narrow versions of the heaviest builders keep CI fast; test_paper_zoo_matches_table1 still builds
# every full-size paper model.
SMALL_ARGS = {"resnet_paper": {"filters": 16}, "resnet18": {"filters": 16}, "resnet34": {"filters": 16},
              "inception": {"stem_filters": 16, "n_start": 32, "n_step": 16, "dense_units": (128,)}}
