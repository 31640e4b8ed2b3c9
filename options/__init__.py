"""Command-line options: `BaseOptions` holds shared flags; train/test add their own."""
