"""Providers: the world the runbooks operate, behind the ports of ``runbooks.ports``.

``local`` (the embedded default) is the agents and control API on this machine; ``aws`` drives the reference
system's own deployment (ARC routing controls, Aurora global databases, ECS) with the same runbooks. Which one
runs is a setting (``provider``); ``runbooks.wiring.bind`` hands ``aws`` to ``providers.aws.ports.bind``.
"""
