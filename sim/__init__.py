"""routesim: replay LLM request traces against synthetic providers and compare routing policies."""

__version__ = "0.1.0"
