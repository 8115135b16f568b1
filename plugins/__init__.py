"""Built-in plugins. They use only the public API of `bench`, like a third party."""
