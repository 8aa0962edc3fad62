"""One module per `scanguard` subcommand (or family of subcommands)."""
