"""Embedded demo dataset: MIND-format files drawn from a known click model, deterministic by seed."""
from training.data.demo.config import DemoConfig
from training.data.demo.generator import generate_demo
from training.data.demo.report import DemoReport

__all__ = ["DemoConfig", "DemoReport", "generate_demo"]
