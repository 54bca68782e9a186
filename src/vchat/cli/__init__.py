"""Every command: argv, options and wiring; the composition root."""
