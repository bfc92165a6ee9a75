from tests.storage.conftest import basic_registry, pki

__all__ = ["basic_registry", "pki"]
