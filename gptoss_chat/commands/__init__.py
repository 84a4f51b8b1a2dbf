"""Subcommands of the gptoss-chat CLI, one module each (see cli.SUBCOMMANDS)."""
