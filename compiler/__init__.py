"""llmcc: a GitOps declarative config compiler for LLM platforms."""

__version__ = "0.4.0"
