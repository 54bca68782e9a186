"""Terminal layer: rendering, previews, progress; the only place that writes to the terminal."""
