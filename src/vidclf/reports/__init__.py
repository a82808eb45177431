"""The files a run writes for people to read: one module per file kind, each a Lightning callback
over the plain writers in `files`."""
