"""plugins.tasks.physics (being built in this session)."""
