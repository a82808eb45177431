"""The files a run writes for people to read, each a Lightning callback: data_report, evaluation, run_info."""
