"""The compile engine: one target's inputs to its effective modules, and many targets at once.

``types`` holds the values stages hand to each other (a leaf: it imports no stage);
``repository`` the parsed inputs of one revision, ``sharing`` their parse cache keyed by
git blob id; ``pipeline`` the one order of the stages and the caches a run keeps between
targets; ``inherit`` the tenant shortcut; ``build`` the many-target driver. The stages
themselves live in their own packages (``load``, ``render``, ``merge``, ``validate``,
``policy``). Nothing here imports the commands (``cli``) or the packages built on the
engine (``diff``, ``audit``, ``agent``, ``client``); ``tests/core/test_layering.py`` checks it.
"""
