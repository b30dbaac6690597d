"""The hooks a harness plugin can implement. Kept small on purpose."""
import pluggy

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")


@hookspec
def register_competitions(register):
    """Register competitions by calling ``register(competition)`` with a ``Competition`` instance."""


@hookspec
def register_commands(cli):
    """Add extra click commands to the ``harness`` CLI group."""
