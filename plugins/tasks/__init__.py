"""Built-in tasks, one subpackage per family (``plugins.tasks.ode``, ...)."""
