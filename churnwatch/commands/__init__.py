"""One module per ``churnwatch`` subcommand: ``HELP``, ``add_arguments(parser)``, ``run(args)``."""
