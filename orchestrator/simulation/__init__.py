"""Searches replayed in simulated time on real learning curves (`nasorch simulate`)."""

from orchestrator.simulation.engine import SimResult, Simulation
from orchestrator.simulation.setup import COMBOS, build_source, simulate

__all__ = ["COMBOS", "SimResult", "Simulation", "build_source", "simulate"]
