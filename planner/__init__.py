"""planner: capacity planning and cost simulation for LLM inference."""

__version__ = "0.1.0"
