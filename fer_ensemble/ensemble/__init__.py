"""Ensembles of saved models: combination methods (`methods`), subset search over prediction caches, `Ensemble`."""
# Through the `combine` module, so that importing it later cannot rebind the package's `combine`
# (a submodule import sets the package attribute of its name).
from .combine import (DEFAULT_METHODS, METHODS, SEARCHABLE, STACKING, CombinationMethod, Stacker, combine, fit_weights,
                      get_method)
from .cv import PROCEDURES, Pick, choose_procedure, cross_validate, fit_procedure
from .ensemble import MANIFEST, Ensemble, Member, write_manifest
from .layers import CombineMembers
from .run_search import CV_FILE, cv_run, keep_top_members, load_caches, manifest_proba, procedure_table, search_run
from .search import SearchResult, brute_force_accuracy, greedy_select, search_subsets, subset_correct

__all__ = ["Ensemble", "Member", "METHODS", "SEARCHABLE", "combine", "fit_weights", "Stacker", "search_subsets",
           "search_run", "keep_top_members", "load_caches", "manifest_proba", "subset_correct", "greedy_select",
           "brute_force_accuracy", "SearchResult", "write_manifest", "MANIFEST", "CombineMembers",
           "PROCEDURES", "Pick", "cross_validate", "fit_procedure", "choose_procedure", "cv_run", "CV_FILE",
           "procedure_table", "CombinationMethod", "get_method", "DEFAULT_METHODS", "STACKING"]
