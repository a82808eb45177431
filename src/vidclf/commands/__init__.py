"""The bodies of the subcommands beyond Lightning's loops: export, predict writing, data look, serve."""
