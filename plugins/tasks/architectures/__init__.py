"""plugins.tasks.architectures (being built in this session)."""
