from tests.policy._support import issue6_commands

__all__ = ["issue6_commands"]
