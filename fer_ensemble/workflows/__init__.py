"""Workflows: orchestration that runs several stages in a row (train a zoo, search it, evaluate
it): the studies' experiments and the demo. They sit above every stage, below only the CLI."""
from .demo import run_demo
from .experiments import Experiment, load_experiment, run_experiment

__all__ = ["run_demo", "Experiment", "load_experiment", "run_experiment"]
