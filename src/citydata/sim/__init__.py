"""The Phuket simulator: an external client that drives a running platform over HTTP and MQTT only, exactly as
real devices would. Deterministic for a given seed. One module per feed."""

from citydata.sim.runner import Simulator, SimulatorConfig

__all__ = ["Simulator", "SimulatorConfig"]
