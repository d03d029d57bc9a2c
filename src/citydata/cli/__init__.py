"""The ``citydata`` command line: one module per command group."""
