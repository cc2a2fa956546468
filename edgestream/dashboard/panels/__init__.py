"""Dashboard panels, one module each, registered in :data:`~edgestream.dashboard.panels.base.PANELS`.

Adding a panel means adding a module here with a ``@PANELS.register("name", area=..., order=...)``
class; the window discovers it from the registry.
"""
