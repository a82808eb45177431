"""Files for people and programs: storage anywhere fsspec reaches, output files, figures, checkpoints, file kinds."""
